"""Reports for people: Markdown renderings of the run and inspection report dicts."""

from __future__ import annotations

from augcli.reporting.header import header_lines
from augcli.reporting.notes import identical_notes, missing_class_notes, setup_notes
from augcli.reporting.text import cell


def counts_table(report: dict) -> list[str]:
    """Samples per class at every stage that the report has."""
    counts = report["counts"]
    stages = [("loaded", counts["loaded"]), ("after clean", counts["after_clean"])]
    stages += [(f"{s} in", c) for s, c in counts["splits"].items()]
    stages += [(f"{s} out", c) for s, c in counts.get("output", {}).items()]
    lines = ["## Samples per class", "", "| class | " + " | ".join(n for n, _ in stages) + " |",
             "|---|" + "---:|" * len(stages)]
    for name in report["dataset"]["classes"]:
        lines.append(f"| {cell(name)} | " + " | ".join(str(c.get(name, 0)) for _, c in stages) + " |")
    lines.append("| **total** | " + " | ".join(f"**{sum(c.values())}**" for _, c in stages) + " |")
    ratio = report["class_balance"]["imbalance_ratio"]
    return lines + ["", f"Imbalance ratio (largest / smallest class, as loaded): {ratio:.2f}.", ""]


def cleaning_section(report: dict, limit: int = 50) -> list[str]:
    """Unreadable files and cleaning findings, by reason, then the first ``limit`` of each list."""
    out = ["## Cleaning", ""]
    sk = report["skipped"]
    if sk["count"]:
        out += [f"{sk['count']} unreadable file(s) skipped:", "", "| file | reason | detail |", "|---|---|---|"]
        out += [f"| `{cell(f['id'])}` | {f['reason']} | {cell(f['detail'])} |" for f in sk["files"][:limit]]
        if sk["count"] > limit:
            out.append(f"| … | {sk['count'] - limit} more in the JSON report | |")
        out.append("")
    warned = [w for w in report.get("warnings", []) if w["reason"] != "resized"]  # resized: one note (setup_notes)
    if warned:
        out += [f"{len(warned)} file(s) loaded but worth a look:", "", "| file | reason | detail |", "|---|---|---|"]
        out += [f"| `{cell(w['id'])}` | {w['reason']} | {cell(w['detail'])} |" for w in warned[:limit]]
        out.append("")
    cl = report["clean"]
    if cl["records"]:
        out += [f"{cl['removed']} removed, {cl['flagged']} flagged.", "", "| reason | samples |", "|---|---:|"]
        out += [f"| {reason} | {n} |" for reason, n in cl["by_reason"].items()]
        out += ["", "| sample | reason | action | score | related sample | suggested label | labels disagree |",
                "|---|---|---|---:|---|---|---|"]
        for r in cl["records"][:limit]:
            score = f"{r['score']:.3f}" if isinstance(r.get("score"), float) else cell(r.get("score"))
            out.append(f"| `{cell(r['id'])}` | {r['reason']} | {r.get('action', '')} | {score} | "
                       f"{cell(r.get('duplicate_of'))} | {cell(r.get('suggested_label'))} | "
                       f"{'yes' if r.get('label_conflict') else ''} |")
        if len(cl["records"]) > limit:
            out.append(f"| … {len(cl['records']) - limit} more in quarantine.csv / the JSON report | | | | | | |")
        out.append("")
    if not sk["count"] and not cl["records"]:
        out += ["Nothing skipped or found.", ""]
    if cl.get("label_errors"):  # how far the label-error findings (or their absence) can be trusted
        from augcli.clean.label_errors import describe  # function-level: pulls scipy.fft (pHash)

        line = describe(cl["label_errors"])
        out += [cell(line[0].upper() + line[1:]) + ".", ""]
    return out


def render_run(report: dict) -> str:
    """report.md: what went in, what cleaning did, what came out, how fast."""
    lines = header_lines(report, "augcli run report")
    lines += [f"- output: `{cell(report['output']['dir'])}` ({report['output']['format']}), "
              f"{report['output']['total']} samples", ""]
    lines += counts_table(report)
    missing = setup_notes(report) + missing_class_notes(report)
    lines += [*(f"- **Warning:** {cell(note)}." for note in missing), ""] if missing else []
    lines += cleaning_section(report)
    tr = report["transforms"]
    lines += ["## Transforms", "", f"{tr['augmented_samples']} augmented samples.", "",
              "| transform | fired | rate |", "|---|---:|---:|"]
    lines += [f"| {name} | {v['count']} | {v['rate']:.1%} |" for name, v in tr["fired"].items()]
    notes = identical_notes(report)
    lines += ["", *(f"- {note}." for note in notes)] if notes else []
    if tr["rules"]:
        lines += ["", "Per-class rules suppressed: " + (", ".join(
            f"{name} {n}×" for name, n in tr["suppressed_by_rules"].items()) or "nothing") + "."]
    if tr["balance"] is not None:
        lines += ["", f"Class balancing to target `{tr['balance']}`: see the `train out` column above."]
    if tr["soft_labels"]:
        lines += ["", "Mixing transforms make training labels soft: `labels` stays the class index (the class with the "
                  "largest weight); the soft labels are the npz `soft_labels` (N×K, train split), the tar `.json` "
                  "`soft_label` and the PNG tree's per-split `metadata.jsonl`."]
    perf = report["performance"]
    lines += ["", "## Performance", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in perf["seconds"].items()]
    lines += [f"| total | {perf['total_seconds']:.3f} |", "",
              f"Augmentation throughput: {perf['augmented_images_per_second']} images/s "
              f"(batch size {perf['batch_size']}, {perf['workers']} worker(s)); peak memory {perf['peak_memory_mb']} MB.",
              "", "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    for picture, title in (("clean.png", "cleaning findings"), ("preview.png", "preview")):
        if picture in report["output"]["files"]:
            lines += [f"![{title}]({picture})", ""]
    return "\n".join(lines)


def render_inspection(report: dict) -> str:
    """inspect.md: class balance and every finding; nothing was changed."""
    lines = header_lines(report, "augcli inspection") + ["", "Read-only: nothing was removed or changed.", ""]
    lines += counts_table(report) + cleaning_section(report, limit=200)
    if "clean.png" in report["output"]["files"]:
        lines += ["![findings by reason](clean.png)", ""]
    return "\n".join(lines)
