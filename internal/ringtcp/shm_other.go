//go:build !linux

package ringtcp

import "errors"

var errNoShm = errors.New("shared memory between neighbours is implemented on Linux only")

func createShm(size int) ([]byte, string, error)            { return nil, "", errNoShm }
func openShm(name string, size int) ([]byte, string, error) { return nil, "", errNoShm }
func unmapShm(mem []byte)                                   {}
func removeShm(path string)                                 {}
func shmName(path string) string                            { return path }
