package chaos

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// PrintTable writes the summary table, then every anomaly found (at most 10 per run).
func PrintTable(w io.Writer, target string, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tworkload\tfault\tcycles\toperations\tacknowledged\tlost\tduplicated\tother anomalies\tresult\t")
	for _, r := range results {
		verdict := "ok"
		switch {
		case r.Err != nil:
			verdict = "ERROR"
		case !r.Report.OK():
			verdict = "FAIL"
		}
		dup := fmt.Sprint(r.Report.Duplicated)
		if r.Report.AllowedDuplicates > 0 {
			dup += " (allowed)"
		}
		acked := fmt.Sprint(r.Report.Acked)
		if r.Report.Expired > 0 {
			acked += fmt.Sprintf(" (%d expired)", r.Report.Expired) // below the log start: retention's
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%d\t%s\t\n", target, r.Workload, r.Fault, r.Cycles, r.Report.Ops,
			acked, r.Report.Lost, dup, r.Report.Other(), verdict)
	}
	tw.Flush()
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(w, "\n%s/%s: error: %v\n", r.Workload, r.Fault, r.Err)
		}
		for i, a := range r.Report.Anomalies {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more\n", len(r.Report.Anomalies)-10)
				break
			}
			fmt.Fprintf(w, "%s/%s: %s: %s\n", r.Workload, r.Fault, a.Kind, a.Detail)
		}
	}
}
