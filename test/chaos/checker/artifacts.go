package checker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/anishathalye/porcupine"
)

// WriteArtifacts writes what a developer needs to study a run into dir
// (created if missing): history.jsonl, schedule.json (the nemesis
// schedule, as the harness describes it), report.txt, report.json and,
// when porcupine found a window not linearizable, porcupine.html, its
// interactive view of that window (nemesis events marked).
func (r *Report) WriteArtifacts(dir string, history []Event, schedule any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	err = WriteHistory(f, history)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, "schedule.json"), schedule); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "report.json"), r); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(r.String()), 0o644); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	if r.linModel != nil {
		if err := porcupine.VisualizePath(*r.linModel, r.linInfo, filepath.Join(dir, "porcupine.html")); err != nil {
			return fmt.Errorf("write artifacts: porcupine view: %w", err)
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write artifacts %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	return nil
}
