package metric_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

func TestDecodeBatchInterval(t *testing.T) {
	now := time.Now()
	sample := `{"collectedAt":"` + now.UTC().Format(time.RFC3339) + `","cpuUsagePercent":1,"cpuLoad1m":0,"cpuLoad5m":0,"cpuLoad15m":0,` +
		`"ramTotalBytes":2,"ramUsedBytes":1,"ramAvailableBytes":1,"ramUsagePercent":50,"diskTotalBytes":2,"diskUsedBytes":1,` +
		`"diskAvailableBytes":1,"diskUsagePercent":50,"networkRxBytes":0,"networkTxBytes":0,"uptimeSeconds":1}`
	for in, want := range map[string]time.Duration{"": 0, `"interval":60,`: time.Minute, `"interval":1,`: time.Second} {
		b, err := metric.DecodeBatch([]byte(`{`+in+`"samples":[`+sample+`]}`), "web-1", now)
		if err != nil || b.Interval != want {
			t.Errorf("%s: %v %v, want %v", in, b.Interval, err, want)
		}
	}
	for _, in := range []string{`"interval":0,`, `"interval":-5,`, `"interval":1.5,`, `"interval":"60",`, `"interval":86401,`} {
		_, err := metric.DecodeBatch([]byte(`{`+in+`"samples":[`+sample+`]}`), "web-1", now)
		if !errors.Is(err, metric.ErrInvalid) || !strings.HasPrefix(err.Error(), "interval") {
			t.Errorf("%s: %v, want a 400 naming interval", in, err)
		}
	}
}
