package config

import "testing"

func TestConsoleSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env     []string
		want    bool
		wantErr bool
	}{
		{nil, true, false},
		{[]string{"MOZAIKS_CONSOLE=false"}, false, false},
		{[]string{"MOZAIKS_CONSOLE=0"}, false, false},
		{[]string{"MOZAIKS_CONSOLE=true"}, true, false},
		{[]string{"MOZAIKS_CONSOLE=maybe"}, false, true},
	} {
		c, err := Load(LoadOptions{Environ: tc.env, Dir: t.TempDir()})
		if tc.wantErr {
			if err == nil {
				t.Errorf("%v: no error", tc.env)
			}
			continue
		}
		if err != nil || c.Console != tc.want {
			t.Errorf("%v: console=%v err=%v, want %v", tc.env, c != nil && c.Console, err, tc.want)
		}
	}
}
