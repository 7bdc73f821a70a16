package cluster

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gaugeValue reads one unlabelled gauge or counter from a node's registry.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// GaugeValue is gaugeValue for the package's external tests.
var GaugeValue = gaugeValue
