// Package fsutil holds file-system helpers shared by the packages that
// write durable files (storage, cluster). It imports no Flotilla package.
package fsutil

import (
	"fmt"
	"os"
)

// SyncDir makes a directory's entries durable: a file created, renamed or
// removed in dir survives a machine crash only after its directory is
// synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
