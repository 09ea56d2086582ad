package conformance

import (
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// renderWire writes COMPATIBILITY.md's wire-level section: per API key, the versions each side
// advertises, the requests compared (every compared step of every case variant), how many
// matched, differed as declared, or differed; then the declared reasons and the undeclared
// differences.
func renderWire(b *strings.Builder, wr *WireResults) {
	w := func(f string, a ...any) { fmt.Fprintf(b, f, a...) }
	w("## Wire-level differential (every API, every version)\n\n")
	w("`make wire` (`bin/klite-conformance wire`) sends the request sequences in `scenarios/wire/`\n")
	w("(encoded with kmsg, over a raw connection) to klite and to Kafka and compares the decoded\n")
	w("answers field by field after a declared normalization (conformance/wire/normalize.go: throttle\n")
	w("time, cluster and node IDs, topic and producer IDs, member IDs, broker timestamps, error\n")
	w("messages, orders Kafka does not define). Steps marked `version: all` run at every version klite\n")
	w("advertises. Declared differences (with reasons) are in `conformance/wire-known-diffs.yaml`.\n\n")
	if !wr.Updated.IsZero() {
		w("Last run: %s.\n\n", wr.Updated.UTC().Format("2006-01-02 15:04 UTC"))
	}
	type agg struct {
		variants, compared, match, known, differ, kliteOnly, errs int
		files                                                     map[string]bool
	}
	per := map[int16]*agg{}
	get := func(k int16) *agg {
		if per[k] == nil {
			per[k] = &agg{files: map[string]bool{}}
		}
		return per[k]
	}
	status := map[string]int{}
	for _, v := range wr.Variants {
		status[v.Status]++
		a := get(v.Key)
		a.variants++
		a.files[v.File] = true
		switch v.Status {
		case WireKliteOnly:
			a.kliteOnly++
		case WireError:
			a.errs++
		}
		for _, s := range v.Steps {
			sa := get(s.Key)
			sa.files[v.File] = true
			sa.compared++
			switch s.Status {
			case WireMatch:
				sa.match++
			case WireKnown:
				sa.known++
			default:
				sa.differ++
			}
		}
	}
	w("%d case variants: %d match, %d differ only as declared, %d differ, %d klite-only, %d error.\n\n",
		len(wr.Variants), status[WireMatch], status[WireKnown], status[WireDiffer], status[WireKliteOnly], status[WireError])
	rng := map[string]map[int16]string{}
	keys := map[int16]bool{}
	for _, t := range TargetNames {
		rng[t] = map[int16]string{}
		if ti := wr.Targets[t]; ti != nil {
			for _, a := range ti.APIs {
				rng[t][a.Key] = fmt.Sprintf("%d-%d", a.Min, a.Max)
				if t == "klite" {
					keys[a.Key] = true
				}
			}
		}
	}
	for k := range per {
		keys[k] = true
	}
	sorted := make([]int, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, int(k))
	}
	sort.Ints(sorted)
	w("| key | API | klite | Kafka | variants | requests compared | match | declared difference | differ | case files |\n")
	w("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range sorted {
		a := per[int16(k)]
		if a == nil {
			a = &agg{files: map[string]bool{}}
		}
		kl, kf := rng["klite"][int16(k)], rng["kafka"][int16(k)]
		if kl == "" {
			kl = "-"
		}
		if kf == "" {
			kf = "-"
		}
		var files []string
		for f := range a.files {
			files = append(files, fmt.Sprintf("[%s](scenarios/wire/%s)", f, f))
		}
		sort.Strings(files)
		differ := fmt.Sprint(a.differ)
		if a.differ > 0 {
			differ = "**" + differ + "**"
		}
		cov := ""
		if a.compared == 0 {
			cov = " (no case)"
		}
		w("| %d | %s%s | %s | %s | %d | %d | %d | %d | %s | %s |\n", k, kmsg.NameForKey(int16(k)), cov, kl, kf,
			a.variants, a.compared, a.match, a.known, differ, strings.Join(files, " "))
	}
	w("\n")
	reasons := map[string][]string{}
	var order []string
	var bad []string
	for _, v := range wr.Variants {
		label := v.Case
		if v.Version >= 0 {
			label = fmt.Sprintf("%s v%d", v.Case, v.Version)
		}
		for _, r := range v.Reasons {
			if _, ok := reasons[r]; !ok {
				order = append(order, r)
			}
			reasons[r] = append(reasons[r], label)
		}
		if v.Status == WireDiffer || v.Status == WireError {
			det := v.Details
			if len(det) > 3 {
				det = append(append([]string{}, det[:3]...), fmt.Sprintf("(%d more)", len(v.Details)-3))
			}
			bad = append(bad, fmt.Sprintf("- `%s` (%s): %s", label, v.Status, clipDoc(strings.Join(det, "; "))))
		}
	}
	if len(bad) > 0 {
		w("### Undeclared differences\n\n%s\n\n", strings.Join(bad, "\n"))
	}
	if len(order) > 0 {
		w("### Declared differences\n\n| reason | case variants |\n|---|---|\n")
		for _, r := range order {
			vs := reasons[r]
			list := strings.Join(vs, ", ")
			if len(vs) > 6 {
				list = strings.Join(vs[:6], ", ") + fmt.Sprintf(" and %d more", len(vs)-6)
			}
			w("| %s | %s |\n", clipDoc(strings.ReplaceAll(r, "\n", " ")), list)
		}
		w("\n")
	}
}
