// Package keystonetest is a fake Keystone v3 for the OpenStack sinks' unit
// tests: it issues tokens for one user and password, serves a catalogue,
// and can revoke every token to make services answer 401.
package keystonetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Fixed credentials of the fake.
const (
	User     = "meter"
	Password = "pw-Xy7!secret"
	Project  = "demo"
	Region   = "RegionOne"
)

// Server is a fake Keystone v3.
type Server struct {
	*httptest.Server

	mu        sync.Mutex
	endpoints map[string]string // service type -> URL
	valid     map[string]bool
	issued    int
}

// New starts a fake Keystone; Close it when done.
func New() *Server {
	s := &Server{endpoints: map[string]string{}, valid: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// AuthURL is the versioned identity endpoint.
func (s *Server) AuthURL() string { return s.URL + "/v3/" }

// AddEndpoint puts a service in the catalogue (public, internal and admin).
func (s *Server) AddEndpoint(serviceType, url string) {
	s.mu.Lock()
	s.endpoints[serviceType] = url
	s.mu.Unlock()
}

// Valid reports whether a token is one the fake issued and did not revoke.
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.valid[token]
}

// RevokeAll invalidates every token issued so far.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	clear(s.valid)
	s.mu.Unlock()
}

// Issued returns how many tokens the fake issued.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// CloudsYAML writes a clouds.yaml with a cloud named "fake" into dir and
// returns its path. password overrides Password when not empty.
func (s *Server) CloudsYAML(dir, password string) (string, error) {
	if password == "" {
		password = Password
	}
	p := filepath.Join(dir, "clouds.yaml")
	y := fmt.Sprintf(`clouds:
  fake:
    auth:
      auth_url: %s
      username: %s
      password: %q
      project_name: %s
      user_domain_name: Default
      project_domain_name: Default
    region_name: %s
    interface: public
`, s.AuthURL(), User, password, Project, Region)
	return p, os.WriteFile(p, []byte(y), 0o600)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v3/auth/tokens" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Auth struct {
			Identity struct {
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u := req.Auth.Identity.Password.User
	if u.Name != User || u.Password != Password {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}`))
		return
	}
	s.mu.Lock()
	s.issued++
	token := "tok-" + strconv.Itoa(s.issued) + "-7f3a9c"
	s.valid[token] = true
	var catalog []map[string]any
	for typ, url := range s.endpoints {
		var eps []map[string]any
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{"id": typ + iface, "interface": iface, "region": Region, "region_id": Region, "url": url})
		}
		catalog = append(catalog, map[string]any{"id": typ, "type": typ, "name": typ, "endpoints": eps})
	}
	s.mu.Unlock()
	w.Header().Set("X-Subject-Token", token)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
		"methods":    []string{"password"},
		"expires_at": time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		"user":       map[string]any{"id": "uid", "name": User, "domain": map[string]any{"id": "default", "name": "Default"}},
		"project":    map[string]any{"id": "pid", "name": Project, "domain": map[string]any{"id": "default", "name": "Default"}},
		"catalog":    catalog,
	}})
}
