package main

// The side-by-side run's outputs: report.md (machine, limits, the table) and chart.svg
// (throughput, latency percentiles and RSS over time, klite beside Kafka), hand-written
// SVG from a text/template.

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/template"
	"time"
)

func fmtVal(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch unit {
	case "MB/s":
		return fmt.Sprintf("%.0f MB/s", v)
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "s":
		return fmt.Sprintf("%.2f s", v)
	default:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
}

func ratio(c cmpRow) string {
	if math.IsNaN(c.v[0]) || math.IsNaN(c.v[1]) || c.v[1] == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", c.v[0]/c.v[1])
}

// machineInfo is the CPU model, core count, memory and kernel, for the report's header.
func machineInfo() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	memGB := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			memGB = fmt.Sprintf("%.0f GB", float64(kb)/1e6)
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d cores (%s), %s RAM, Linux %s, %s", runtime.NumCPU(), model, memGB, kernel, runtime.Version())
}

func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func (r *compareRun) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# klite-bench: klite beside Apache Kafka 4.0.2\n\n")
	fmt.Fprintf(&b, "- run: %s UTC, commit %s, %s\n", r.start.UTC().Format("2006-01-02 15:04"), gitCommit(r.root), time.Since(r.start).Round(time.Second))
	fmt.Fprintf(&b, "- machine: %s\n", machineInfo())
	fmt.Fprintf(&b, "- load average (1/5/15 min) at the start: %s; after the workloads: %s\n", r.loadAvg[0], r.loadAvg[1])
	fmt.Fprintf(&b, "- both brokers run for the whole run; each workload runs on one, then the other (order alternating)\n")
	fmt.Fprintf(&b, "- Kafka: run-kafka.sh (KRaft combined mode, one node) with -Xms1g -Xmx1g G1; CPU and RSS of each broker's process tree from /proc\n")
	fmt.Fprintf(&b, "- the benchmark's own process (franz-go clients, lean generator): %s\n\n", clientGC())
	if len(r.machine) > 0 {
		fmt.Fprintf(&b, "| machine limit | value | how |\n|---|---:|---|\n")
		for _, m := range r.machine {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", m.name, m.value, m.note)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "| metric | klite | Kafka | klite/Kafka | note |\n|---|---:|---:|---:|---|\n")
	for _, c := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.name, fmtVal(c.v[0], c.unit), fmtVal(c.v[1], c.unit), ratio(c), c.note)
	}
	if len(r.klOnly) > 0 {
		fmt.Fprintf(&b, "\n| klite only | value | note |\n|---|---:|---|\n")
		for _, k := range r.klOnly {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", k.name, k.value, k.note)
		}
	}
	fmt.Fprintf(&b, "\n![klite beside Kafka: throughput, latency, RSS over time](chart.svg)\n")
	return b.String()
}

// svg is what the chart template draws.
type svg struct {
	W, H  int
	Rects []svgRect
	Texts []svgText
	Lines []svgLine
}
type svgRect struct {
	X, Y, W, H float64
	Fill       string
}
type svgText struct {
	X, Y   float64
	Anchor string
	Size   int
	S      string
}
type svgLine struct {
	Points string
	Stroke string
}

var svgTmpl = template.Must(template.New("svg").Parse(`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" font-family="sans-serif">
<rect x="0" y="0" width="{{.W}}" height="{{.H}}" fill="white"/>
{{range .Rects}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}" fill="{{.Fill}}"/>
{{end}}{{range .Lines}}<polyline fill="none" stroke="{{.Stroke}}" stroke-width="1.5" points="{{.Points}}"/>
{{end}}{{range .Texts}}<text x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" font-size="{{.Size}}" text-anchor="{{.Anchor}}">{{html .S}}</text>
{{end}}</svg>
`))

var colors = [2]string{"#1f77b4", "#ff7f0e"} // klite, Kafka

// chart draws three panels: throughput bars (MB/s rows), latency bars (e2e percentiles, log
// scale) and each broker's RSS over the run.
func (r *compareRun) chart() string {
	const W, left, right, barH = 1000, 380, 110, 9
	s := &svg{W: W}
	y := 30.0
	text := func(x, y float64, anchor string, size int, str string) {
		s.Texts = append(s.Texts, svgText{x, y, anchor, size, str})
	}
	text(W/2, y-8, "middle", 16, "klite (blue) beside Apache Kafka 4.0.2 (orange), "+r.start.UTC().Format("2006-01-02 15:04")+" UTC")
	s.Rects = append(s.Rects, svgRect{W - 200, y, 12, 10, colors[0]}, svgRect{W - 120, y, 12, 10, colors[1]})
	text(W-184, y+9, "start", 11, "klite")
	text(W-104, y+9, "start", 11, "Kafka")

	// bars draws one panel of horizontal bar pairs; scale maps a value to [0,1].
	bars := func(title string, rows []cmpRow, scale func(float64) float64) {
		y += 30
		text(10, y, "start", 14, title)
		y += 10
		for _, c := range rows {
			text(left-8, y+barH+3, "end", 10, c.name)
			for i := 0; i < 2; i++ {
				w := 0.0
				if !math.IsNaN(c.v[i]) {
					w = max(1, scale(c.v[i])*float64(W-left-right))
				}
				s.Rects = append(s.Rects, svgRect{left, y + float64(i*barH), w, barH - 1, colors[i]})
				text(left+w+4, y+float64(i*barH)+barH-1, "start", 9, fmtVal(c.v[i], c.unit))
			}
			y += 2*barH + 8
		}
	}
	var tput, lat []cmpRow
	maxT, maxL := 1.0, 1.0
	for _, c := range r.rows {
		switch {
		case c.unit == "MB/s":
			tput = append(tput, c)
			maxT = max(maxT, nanZero(c.v[0]), nanZero(c.v[1]))
		case c.unit == "ms" && strings.HasPrefix(c.name, "e2e") && !strings.HasSuffix(c.name, "max"):
			lat = append(lat, c)
			maxL = max(maxL, nanZero(c.v[0]), nanZero(c.v[1]))
		}
	}
	bars("Throughput, MB/s (higher is better)", tput, func(v float64) float64 { return v / maxT })
	// Latency on a log scale from 0.1 ms, so sub-millisecond and second-long tails both show.
	lo, hi := math.Log10(0.1), math.Log10(maxL*1.2)
	bars("End-to-end latency percentiles, ms, log scale (lower is better)", lat, func(v float64) float64 {
		return max(0, (math.Log10(max(v, 0.1))-lo)/(hi-lo))
	})

	// RSS over time.
	y += 40
	text(10, y, "start", 14, "RSS over the run, MB (sampled every 250 ms; ticks mark workloads)")
	y += 15
	const plotH = 220.0
	var maxRSS int64 = 1
	var maxT2 time.Duration = time.Second
	for _, t := range r.targets {
		for _, p := range t.samples {
			maxRSS = max(maxRSS, p.rss)
			maxT2 = max(maxT2, p.at)
		}
	}
	x0, x1 := 60.0, float64(W-40)
	px := func(at time.Duration) float64 { return x0 + (x1-x0)*float64(at)/float64(maxT2) }
	py := func(v int64) float64 { return y + plotH - plotH*float64(v)/float64(maxRSS) }
	s.Rects = append(s.Rects, svgRect{x0, y + plotH, x1 - x0, 1, "#444"}, svgRect{x0, y, 1, plotH, "#444"})
	for k := 0; k <= 4; k++ {
		v := maxRSS * int64(k) / 4
		text(x0-4, py(v)+4, "end", 9, fmt.Sprintf("%.0f", mb(v)))
		s.Rects = append(s.Rects, svgRect{x0, py(v), x1 - x0, 0.5, "#ddd"})
	}
	for k := 0; k <= 5; k++ {
		at := maxT2 * time.Duration(k) / 5
		text(px(at), y+plotH+14, "middle", 9, fmt.Sprintf("%.0f s", at.Seconds()))
	}
	for i, t := range r.targets {
		var pts []string
		for _, p := range t.samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.at), py(p.rss)))
		}
		s.Lines = append(s.Lines, svgLine{strings.Join(pts, " "), colors[i]})
	}
	for _, m := range r.marks {
		s.Rects = append(s.Rects, svgRect{px(m.at), y + plotH - 6, 1.5, 6, colors[m.target]})
	}
	s.H = int(y + plotH + 30)
	var b strings.Builder
	if err := svgTmpl.Execute(&b, s); err != nil {
		return "<!-- " + err.Error() + " -->"
	}
	return b.String()
}

func nanZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}
