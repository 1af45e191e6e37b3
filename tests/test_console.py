"""The quiet console: what reaches the terminal and what only the log."""

import os
import subprocess
import sys

from components import console, report


def test_quiet_keeps_status_lines_and_bars_on_the_terminal_and_everything_else_in_the_log(tmp_path, capfd):
    log = tmp_path / "logs" / "job.log"
    with console.quiet(str(log)):
        print("python noise")
        sys.stderr.write("stderr noise\n")
        os.write(1, b"fd noise\n")  # what Ray core and C++ libraries write
        subprocess.run([sys.executable, "-c", "print('child noise')"], check=True)  # raylets, servers
        console.say("stage: done")
        with console.bar(3, "work", "item") as progress:
            progress.update(3)
    out, err = capfd.readouterr()
    assert out == "stage: done\n"
    assert "work" in err and "3/3" in err and "noise" not in err
    text = log.read_text()
    for line in ("python noise", "stderr noise", "fd noise", "child noise", "stage: done"):
        assert line in text
    assert "3/3" not in text  # bars stay out of the log
    print("after")  # the terminal is back
    assert capfd.readouterr().out == "after\n"


def test_the_closing_summary_has_a_row_per_retriever_and_marks_intervals_that_exclude_zero():
    def row(ndcg, top1, vs=None):
        return {"top_k_accuracy": {"1": top1, "5": 0.5, "20": 0.7}, "ndcg@10": ndcg, **({"vs_base": vs} if vs else {})}

    rep = {"dataset": {"name": "nfcorpus", "split": "test", "questions": 323},
           "retrievers": {"base-minilm": row(0.3145, 0.43),
                          "distilled": row(0.3345, 0.45, {"ndcg@10": {"delta": 0.02, "ci_low": 0.01, "ci_high": 0.03}}),
                          "direct": row(0.3165, 0.44, {"ndcg@10": {"delta": 0.002, "ci_low": -0.004, "ci_high": 0.009}})}}
    lines = report.summary(rep).splitlines()
    assert lines[0] == "nfcorpus, split test (323 questions):"
    assert lines[1].split()[:5] == ["retriever", "top-1", "top-5", "top-20", "nDCG@10"]
    base, distilled, direct = lines[2:]
    assert base.split() == ["base-minilm", "0.430", "0.500", "0.700", "0.315"]
    assert distilled.endswith("+0.020 [+0.010, +0.030] *")
    assert direct.endswith("+0.002 [-0.004, +0.009]")
