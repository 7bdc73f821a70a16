package cluster

import (
	"bytes"
	"io"
	"log"
	"strings"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newHCLogger bridges hashicorp/raft's hclog output into zap, so raft logs
// carry the node's fields and follow its level and format.
func newHCLogger(z *zap.Logger) hclog.Logger {
	level := hclog.Info
	switch {
	case z.Core().Enabled(zapcore.DebugLevel):
		level = hclog.Debug
	case !z.Core().Enabled(zapcore.InfoLevel):
		level = hclog.Warn
	}
	return hclog.FromStandardLogger(log.New(&zapWriter{z: z}, "", 0), &hclog.LoggerOptions{
		Level:           level,
		DisableTime:     true,
		IncludeLocation: false,
	})
}

// newStdLogger bridges memberlist's *log.Logger into zap.
func newStdLogger(z *zap.Logger) *log.Logger {
	return log.New(&zapWriter{z: z}, "", 0)
}

// zapWriter turns lines like "[WARN]  raft: heartbeat timeout reached" into
// zap entries at the matching level.
type zapWriter struct{ z *zap.Logger }

func (w *zapWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		w.write(string(line))
	}
	return len(p), nil
}

func (w *zapWriter) write(line string) {
	level := zapcore.InfoLevel
	for tag, l := range map[string]zapcore.Level{
		"[TRACE]": zapcore.DebugLevel, "[DEBUG]": zapcore.DebugLevel, "[INFO]": zapcore.InfoLevel,
		"[WARN]": zapcore.WarnLevel, "[ERR]": zapcore.ErrorLevel, "[ERROR]": zapcore.ErrorLevel,
	} {
		if i := strings.Index(line, tag); i >= 0 {
			level = l
			line = strings.TrimSpace(line[i+len(tag):])
			break
		}
	}
	if ce := w.z.Check(level, line); ce != nil {
		ce.Write()
	}
}

var _ io.Writer = (*zapWriter)(nil)
