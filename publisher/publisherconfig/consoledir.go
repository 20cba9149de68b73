package publisherconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// checkConsoleDir checks the directory of a console:///path sink's file:
// the sink creates the file, not its directory, on its first write, so a
// missing or unwritable directory is a config error now (for -check, the
// start and a reload) rather than a failure of every write. It creates
// nothing and does no I/O on the file: a stat and an access check of the
// directory. Other URLs pass.
func checkConsoleDir(u *url.URL) error {
	if u.Scheme != "console" || u.Host != "" || u.Path == "" {
		return nil
	}
	dir := filepath.Dir(u.Path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: create it (the sink creates only the file, on its first write)", dir)
	case err != nil:
		return fmt.Errorf("directory of the file: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := writableDir(dir); err != nil {
		return fmt.Errorf("directory %s is not writable by this user: %w (the sink creates the file there on its first write)", dir, err)
	}
	return nil
}
