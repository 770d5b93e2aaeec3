package config

// password checks what can be known of the password without reading a file: one
// source only, and a word about one written inline. The file password_file names
// is looked at by the host pass (hostFiles).
func (v *validator) password(p, password, passwordFile string) {
	if password != "" && passwordFile != "" {
		v.addf(p+".password", "set either password or password_file, not both")
	}
	if password != "" {
		v.warn(p + ".password: written inline in the config; prefer password_file with mode 0600")
	}
}

// tls reads an instance's tls section. Whether its files exist is the host pass's
// question (hostFiles).
func (v *validator) tls(path string, r *rawTLS) *TLS {
	if r == nil {
		return nil
	}
	t := &TLS{CA: r.CA, Cert: r.Cert, Key: r.Key, ServerName: r.ServerName, InsecureSkipVerify: r.InsecureSkipVerify}
	if (t.Cert == "") != (t.Key == "") {
		v.addf(path, "cert and key must be given together")
	}
	if t.InsecureSkipVerify {
		v.warn(path + ".insecure_skip_verify: the server certificate is not verified")
	}
	return t
}
