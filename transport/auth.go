package transport

import "crypto/subtle"

// authRequired reports whether clients must present credentials.
func (s *Server) authRequired() bool {
	return s.cfg.Username != "" || s.cfg.Token != ""
}

// authorized checks CONNECT credentials in constant time. With no
// credentials configured every client is accepted.
func (s *Server) authorized(o *connectOpts) bool {
	switch {
	case s.cfg.Token != "":
		return equal(o.AuthToken, s.cfg.Token)
	case s.cfg.Username != "":
		// Evaluate both comparisons so timing does not reveal which failed.
		u, p := equal(o.User, s.cfg.Username), equal(o.Pass, s.cfg.Password)
		return u && p
	default:
		return true
	}
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
