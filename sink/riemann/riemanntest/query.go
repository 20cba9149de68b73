package riemanntest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// predicate says whether an event matches a query.
type predicate func(*Event) bool

// parseQuery compiles a query in (a subset of) Riemann's query language:
//
//	true | false
//	FIELD = VALUE | FIELD != VALUE | FIELD < > <= >= NUMBER
//	FIELD =~ "like%pattern" | FIELD ~= "regexp"
//	tagged "tag"
//	not Q | Q and Q | Q or Q | ( Q )
//
// FIELD is host, service, state, description, metric, ttl, time (seconds) or
// any other name, which is looked up among the attributes. VALUE is a
// double-quoted string, a number, or nil (the field is absent).
func parseQuery(q string) (predicate, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, fmt.Errorf("parse error in query %q: %w", q, err)
	}
	p := &parser{toks: toks}
	pred, err := p.or()
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	if err != nil {
		return nil, fmt.Errorf("parse error in query %q: %w", q, err)
	}
	return pred, nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokNumber
	tokOp
	tokParen
)

type token struct {
	kind tokKind
	text string  // the word, operator or parenthesis; the unquoted string
	num  float64 // for tokNumber
}

func lex(q string) ([]token, error) {
	var toks []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{kind: tokParen, text: q[i : i+1]})
			i++
		case c == '"':
			j := i + 1
			for j < len(q) && q[j] != '"' {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(q) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			s, err := strconv.Unquote(q[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("bad string %s: %w", q[i:j+1], err)
			}
			toks = append(toks, token{kind: tokString, text: s})
			i = j + 1
		case strings.ContainsRune("=!<>~", rune(c)):
			j := i + 1
			if j < len(q) && strings.ContainsRune("=~", rune(q[j])) {
				j++
			}
			op := q[i:j]
			if !slices.Contains([]string{"=", "!=", "<", ">", "<=", ">=", "=~", "~="}, op) {
				return nil, fmt.Errorf("unknown operator %q", op)
			}
			toks = append(toks, token{kind: tokOp, text: op})
			i = j
		case c == '-' || c == '.' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(q) && strings.ContainsRune("0123456789.eE+-", rune(q[j])) {
				j++
			}
			v, err := strconv.ParseFloat(q[i:j], 64)
			if err != nil {
				return nil, fmt.Errorf("bad number %q", q[i:j])
			}
			toks = append(toks, token{kind: tokNumber, text: q[i:j], num: v})
			i = j
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] == '-' || q[j] == '.' || unicode.IsLetter(rune(q[j])) || unicode.IsDigit(rune(q[j]))) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: q[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
		}
	}
	return toks, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peekWord(w string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == tokWord && p.toks[p.pos].text == w
}

func (p *parser) next() (token, error) {
	if p.pos >= len(p.toks) {
		return token{}, fmt.Errorf("unexpected end of query")
	}
	p.pos++
	return p.toks[p.pos-1], nil
}

func (p *parser) or() (predicate, error) {
	l, err := p.and()
	for err == nil && p.peekWord("or") {
		p.pos++
		var r predicate
		if r, err = p.and(); err == nil {
			a, b := l, r
			l = func(e *Event) bool { return a(e) || b(e) }
		}
	}
	return l, err
}

func (p *parser) and() (predicate, error) {
	l, err := p.not()
	for err == nil && p.peekWord("and") {
		p.pos++
		var r predicate
		if r, err = p.not(); err == nil {
			a, b := l, r
			l = func(e *Event) bool { return a(e) && b(e) }
		}
	}
	return l, err
}

func (p *parser) not() (predicate, error) {
	if p.peekWord("not") {
		p.pos++
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return func(e *Event) bool { return !x(e) }, nil
	}
	return p.primary()
}

func (p *parser) primary() (predicate, error) {
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	switch {
	case t.kind == tokParen && t.text == "(":
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if c, err := p.next(); err != nil || c.text != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return x, nil
	case t.kind == tokWord && t.text == "true":
		return func(*Event) bool { return true }, nil
	case t.kind == tokWord && t.text == "false":
		return func(*Event) bool { return false }, nil
	case t.kind == tokWord && t.text == "tagged":
		v, err := p.next()
		if err != nil || v.kind != tokString {
			return nil, fmt.Errorf("tagged wants a string")
		}
		return func(e *Event) bool { return slices.Contains(e.Tags, v.text) }, nil
	case t.kind == tokWord:
		return p.comparison(t.text)
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}

// comparison parses the operator and value after field.
func (p *parser) comparison(field string) (predicate, error) {
	op, err := p.next()
	if err != nil || op.kind != tokOp {
		return nil, fmt.Errorf("want an operator after %q", field)
	}
	v, err := p.next()
	if err != nil {
		return nil, err
	}
	get := fieldGetter(field)
	switch {
	case v.kind == tokWord && (v.text == "nil" || v.text == "null"):
		switch op.text {
		case "=":
			return func(e *Event) bool { _, _, ok := get(e); return !ok }, nil
		case "!=":
			return func(e *Event) bool { _, _, ok := get(e); return ok }, nil
		}
		return nil, fmt.Errorf("nil takes = or !=")
	case v.kind == tokString:
		switch op.text {
		case "=":
			return func(e *Event) bool { s, _, ok := get(e); return ok && s == v.text }, nil
		case "!=":
			return func(e *Event) bool { s, _, ok := get(e); return !ok || s != v.text }, nil
		case "=~", "~=":
			pat := v.text
			if op.text == "=~" {
				pat = "^" + strings.ReplaceAll(regexp.QuoteMeta(pat), "%", ".*") + "$"
			}
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, err
			}
			return func(e *Event) bool { s, _, ok := get(e); return ok && re.MatchString(s) }, nil
		}
		return nil, fmt.Errorf("operator %s does not take a string", op.text)
	case v.kind == tokNumber:
		x := v.num
		cmp := map[string]func(a float64) bool{
			"=": func(a float64) bool { return a == x }, "!=": func(a float64) bool { return a != x },
			"<": func(a float64) bool { return a < x }, "<=": func(a float64) bool { return a <= x },
			">": func(a float64) bool { return a > x }, ">=": func(a float64) bool { return a >= x },
		}[op.text]
		if cmp == nil {
			return nil, fmt.Errorf("operator %s does not take a number", op.text)
		}
		return func(e *Event) bool { _, n, ok := get(e); return ok && cmp(n) }, nil
	}
	return nil, fmt.Errorf("bad value %q", v.text)
}

// fieldGetter returns how to read a field of an event: as a string, as a
// number, and whether it is set.
func fieldGetter(field string) func(*Event) (string, float64, bool) {
	str := func(f func(*Event) *string) func(*Event) (string, float64, bool) {
		return func(e *Event) (string, float64, bool) {
			if v := f(e); v != nil {
				n, _ := strconv.ParseFloat(*v, 64)
				return *v, n, true
			}
			return "", 0, false
		}
	}
	num := func(f func(*Event) (float64, bool)) func(*Event) (string, float64, bool) {
		return func(e *Event) (string, float64, bool) {
			n, ok := f(e)
			return strconv.FormatFloat(n, 'g', -1, 64), n, ok
		}
	}
	switch field {
	case "host":
		return str(func(e *Event) *string { return e.Proto.Host })
	case "service":
		return str(func(e *Event) *string { return e.Proto.Service })
	case "state":
		return str(func(e *Event) *string { return e.Proto.State })
	case "description":
		return str(func(e *Event) *string { return e.Proto.Description })
	case "metric", "metric_f", "metric_d", "metric_sint64":
		return num(func(e *Event) (float64, bool) {
			p := e.Proto
			return e.Metric, p.MetricD != nil || p.MetricF != nil || p.MetricSint64 != nil
		})
	case "ttl":
		return num(func(e *Event) (float64, bool) { return float64(e.TTL), e.HasTTL })
	case "time":
		return num(func(e *Event) (float64, bool) {
			return float64(e.Time.UnixMicro()) / 1e6, !e.Time.IsZero()
		})
	}
	return func(e *Event) (string, float64, bool) {
		v, ok := e.Attributes[field]
		n, _ := strconv.ParseFloat(v, 64)
		return v, n, ok
	}
}
