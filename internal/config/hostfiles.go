package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// hostFiles is the pass that reads this host: the files the configuration names
// must be here and be what they claim. It is every check that depends on the
// machine rather than the document, so `check-config --host=false` can leave it out
// to judge a file meant for another host. It runs over the configuration the
// document pass built (even one with problems), instance by instance, marking the
// places the document pass marks (see merge).
func hostFiles(c *Config) *validator {
	v := &validator{}
	for i, in := range c.Instances {
		p := fmt.Sprintf("instances[%d]", i)
		v.mark()
		if in.PasswordFile != "" {
			v.passwordFile(p+".password_file", in.PasswordFile)
		}
		v.mark()
		v.tlsFiles(p+".tls", in.TLS)
		v.mark()
	}
	return v
}

// passwordFile checks the file named by password_file. Its value is never echoed
// in a problem: a password written where its file's path goes would otherwise be
// printed on the terminal, by check to the monitoring system and by a reload to
// the journal. A file that is not regular (a FIFO would hang every connect that
// reads it) is refused.
func (v *validator) passwordFile(path, file string) {
	st, err := os.Stat(file)
	if err != nil {
		why := "cannot stat it"
		var pe *fs.PathError
		if errors.As(err, &pe) {
			why = pe.Err.Error()
		}
		v.addf(path, "cannot read the file named there (%s); the value is not shown, in case it is the password itself", why)
		return
	}
	if !st.Mode().IsRegular() {
		v.addf(path, "the file named there is a %s, not a regular file", monitor.FileTypeName(st.Mode()))
		return
	}
	if st.Mode().Perm()&0o004 != 0 {
		v.warn(fmt.Sprintf("%s: %s is readable by other users (mode %04o); chmod 0600 or 0640", path, file, st.Mode().Perm()))
	}
}

// tlsFiles checks that the CA, certificate and key files exist.
func (v *validator) tlsFiles(path string, t *TLS) {
	if t == nil {
		return
	}
	for _, kf := range [][2]string{{"ca", t.CA}, {"cert", t.Cert}, {"key", t.Key}} {
		if kf[1] == "" {
			continue
		}
		if _, err := os.Stat(kf[1]); err != nil {
			v.addf(path+"."+kf[0], "%v", err)
		}
	}
}
