package monitor

import (
	"errors"
	"strconv"
	"strings"
)

// minScrubbedPassword is the shortest password also looked for as plain text in an
// error: a shorter one would match inside ordinary words and garble the message.
const minScrubbedPassword = 4

// errPasswordBreaksURL is said of a URL that parses only once its password is
// hidden: the parser's own words would quote a piece of the password.
var errPasswordBreaksURL = errors.New("the URL does not parse with its password in it: percent-encode / ? # % @ : in the password, or move it to password_file")

// RedactError returns err fit to print when it was got while parsing or using
// addr, whose password it may hold: a *url.Error carries the whole URL, and its
// message can quote a piece of the password (an unescaped '/' ends the host, so
// `invalid port ":pa" after host`). When addr itself does not parse, the error is
// built again from the address with its password hidden (RedactAddr), which names
// the same fault in the host, port, path or query without the password; a fault in
// the password itself gets a message that quotes nothing. Any other error has the
// address and the password replaced in its text. An address without a password
// returns err unchanged.
func RedactError(addr string, err error) error {
	if err == nil {
		return nil
	}
	pass, ok := urlPassword(addr)
	if !ok {
		return err
	}
	if CheckAddr(addr) != nil {
		if rerr := CheckAddr(RedactAddr(addr)); rerr != nil {
			return rerr
		}
		return errPasswordBreaksURL
	}
	msg := err.Error()
	clean := strings.ReplaceAll(msg, strconv.Quote(addr), strconv.Quote(RedactAddr(addr)))
	clean = strings.ReplaceAll(clean, addr, RedactAddr(addr))
	if len(pass) >= minScrubbedPassword {
		clean = strings.ReplaceAll(clean, pass, "xxxxx")
	}
	if clean == msg {
		return err
	}
	// The original chain holds the password: it is not unwrapped to.
	return errors.New(clean)
}

// urlPassword returns the password of a URL address as RedactAddr reads it
// (between the first ':' after "://" and the last '@'), and whether there is one.
func urlPassword(addr string) (string, bool) {
	i := strings.Index(addr, "://")
	if i < 0 {
		return "", false
	}
	at := strings.LastIndex(addr, "@")
	if at < i+3 {
		return "", false
	}
	_, pass, ok := strings.Cut(addr[i+3:at], ":")
	return pass, ok && pass != ""
}
