package credential

import (
	"fmt"
	"os"
)

// CheckKeyFile refuses a private key file that is missing, or that every
// user on the machine can read.
func CheckKeyFile(path string) (os.FileInfo, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("API TLS key: %w", err)
	}
	if info.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("API TLS key %s is readable by every user: chmod 600 %s", path, path)
	}
	return info, nil
}
