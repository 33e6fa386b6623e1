package serve

import (
	_ "embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// defaultTheme is served to apps without a theme of their own. It has the
// token groups ChatUI applies (ChatUI/src/styles/themeProvider.js
// applyTheme: fonts, colors, shadows, branding).
//
//go:embed default_theme.json
var defaultTheme []byte

// maxThemeBytes bounds a theme file; themes are a few KiB.
const maxThemeBytes = 256 << 10

// theme: GET /api/themes/{app_id} -> {"theme": {...}, "source":
// "custom"|"default", "app_id", "updatedAt"}. ChatUI reads data.theme and
// data.source (themeProvider.js loadThemeFromAPI) and sends no token, so the
// route is public like /api/workflows: themes are branding, not data. An app's
// theme is the file {MOZAIKS_THEMES_PATH}/{app_id}.json (a JSON object);
// without one, or with an unreadable one (logged), the default theme.
func (s *Server) theme(w http.ResponseWriter, r *http.Request) error {
	appID := r.PathValue("app_id")
	if err := checkIDs(map[string]string{"app_id": appID}); err != nil {
		return err
	}
	body, source, updated := json.RawMessage(defaultTheme), "default", any(nil)
	if s.cfg.ThemesPath != "" {
		// appID is validated ([A-Za-z0-9._:@-], no separator) and gets a
		// suffix, so the path names a file in the directory.
		p := filepath.Join(s.cfg.ThemesPath, appID+".json")
		if custom, mtime, err := readTheme(p); err == nil {
			body, source, updated = custom, "custom", mtime.UTC().Format(time.RFC3339)
		} else if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("theme file unusable; serving the default theme", "app_id", appID, "path", p, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"theme": body, "source": source, "app_id": appID, "updatedAt": updated})
	return nil
}

func readTheme(path string) (json.RawMessage, time.Time, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	if st.Size() > maxThemeBytes {
		return nil, time.Time{}, errors.New("theme file is larger than 256 KiB")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, time.Time{}, errors.New("theme file is not a JSON object")
	}
	return json.RawMessage(b), st.ModTime(), nil
}
