package motoserver

// Launch starts moto_server on a free loopback port outside a test (the chaos CLI); the
// caller stops it.
func Launch() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	return start(bin)
}
