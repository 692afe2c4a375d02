package vmtest

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// CPIOWriter writes the "newc" cpio format, the one the kernel unpacks an
// initramfs from (Documentation/driver-api/early-userspace/buffer-format.rst):
// each entry is a 110-byte ASCII header, the NUL-terminated name and the
// data, name and data each padded to 4 bytes; a "TRAILER!!!" entry ends it.
type CPIOWriter struct {
	w   io.Writer
	ino uint32
	err error
}

// NewCPIOWriter writes an archive to w; Close writes its trailer.
func NewCPIOWriter(w io.Writer) *CPIOWriter { return &CPIOWriter{w: w} }

// cpio mode bits for the kinds of entry an initramfs needs.
const (
	cpioDir  = 0o040000
	cpioFile = 0o100000
	cpioChar = 0o020000
)

// Dir adds a directory. Parents must be added before their children.
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	return c.entry(name, cpioDir|uint32(perm.Perm()), 0, 0, 0, nil)
}

// File adds a regular file of size bytes read from r.
func (c *CPIOWriter) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	if size > 0xffffffff {
		return fmt.Errorf("cpio %s: %d bytes is more than newc can hold (4 GiB)", name, size)
	}
	return c.entry(name, cpioFile|uint32(perm.Perm()), uint32(size), 0, 0, r)
}

// CharDev adds a character device node, such as dev/console (5, 1): the
// kernel opens it for init's standard streams before anything is mounted.
func (c *CPIOWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return c.entry(name, cpioChar|uint32(perm.Perm()), 0, major, minor, nil)
}

// Close writes the trailer. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	c.ino = 0 // the trailer's fields are all zero
	return c.header("TRAILER!!!", 0, 0, 0, 0)
}

func (c *CPIOWriter) entry(name string, mode, size, major, minor uint32, data io.Reader) error {
	name = strings.TrimPrefix(name, "/")
	if name == "" || name == "TRAILER!!!" {
		return fmt.Errorf("cpio: %q is not a valid entry name", name)
	}
	c.ino++
	if err := c.header(name, mode, size, major, minor); err != nil {
		return err
	}
	if size == 0 {
		return nil
	}
	n, err := io.CopyN(c.w, data, int64(size))
	if err != nil {
		c.err = fmt.Errorf("cpio %s: wrote %d of %d bytes: %w", name, n, size, err)
		return c.err
	}
	return c.pad(int(size))
}

func (c *CPIOWriter) header(name string, mode, size, major, minor uint32) error {
	if c.err != nil {
		return c.err
	}
	nlink := uint32(1)
	if mode&cpioDir != 0 {
		nlink = 2
	}
	if name == "TRAILER!!!" {
		nlink = 1
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check. Everything belongs
	// to root, and mtime 0 keeps the archive reproducible.
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name)+1, 0)
	if _, err := io.WriteString(c.w, h+name+"\x00"); err != nil {
		c.err = fmt.Errorf("cpio %s: %w", name, err)
		return c.err
	}
	return c.pad(len(h) + len(name) + 1)
}

// pad writes the zeros that bring n bytes up to a multiple of 4.
func (c *CPIOWriter) pad(n int) error {
	if p := (4 - n%4) % 4; p > 0 {
		if _, err := c.w.Write(make([]byte, p)); err != nil {
			c.err = fmt.Errorf("cpio: %w", err)
			return c.err
		}
	}
	return nil
}
