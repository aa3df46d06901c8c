package interop

import (
	"errors"
	"net"
)

func asDNSError(err error, de **net.DNSError) bool { return errors.As(err, de) }
