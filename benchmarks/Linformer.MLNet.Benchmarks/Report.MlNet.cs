using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// The ML.NET sections of the report (overhead of <c>Transform</c> and <c>PredictionEngine</c>, training throughput of
/// <c>Fit</c>) and the GPU section, and <see cref="Update"/>, which replaces only those sections in an existing page.
/// Each section sits between <c>&lt;!-- section:NAME --&gt;</c> and <c>&lt;!-- /section:NAME --&gt;</c> markers.
/// </summary>
internal static partial class Report
{
    /// <summary>The ratio of ML.NET throughput to the raw network's that the component aims for.</summary>
    public const double OverheadGoal = 0.9;

    private const string OverheadSection = "overhead", TransformSection = "overhead-transform", PredictSection = "overhead-predict",
        FitSection = "fit", GpuSection = "gpu", RunsSection = "runs";

    private static readonly Dictionary<string, string> Headings = new()
    {
        [OverheadSection] = "## ML.NET overhead",
        [TransformSection] = "### Transform throughput",
        [PredictSection] = "### PredictionEngine latency",
        [FitSection] = "## Training throughput",
        [GpuSection] = "## GPU",
    };

    /// <summary>
    /// The sections this run can write, in page order: (name, markdown with markers, the section it follows when it has to
    /// be inserted). In a partial run only the measured ones (and the GPU section); in a full page all of them (an
    /// unmeasured one says so). The overhead section is an introduction followed by two sub-sections, each replaceable
    /// on its own, each naming the run that measured it.
    /// </summary>
    private static List<(string Name, string Text, string? After)> MlNetSections(BenchmarkResults r, bool separateRun)
    {
        var list = new List<(string, string, string?)>();
        bool transform = r.TransformOverheads.Count > 0, predict = r.PredictLatencies.Count > 0;
        if (transform || predict || !separateRun)
            list.Add((OverheadSection, Marked(OverheadSection, md => WriteOverheadIntro(md, r)), null));
        if (transform || !separateRun)
            list.Add((TransformSection, Marked(TransformSection, md => WriteTransform(md, r, separateRun)), OverheadSection));
        if (predict || !separateRun)
            list.Add((PredictSection, Marked(PredictSection, md => WritePredict(md, r, separateRun)), TransformSection));
        if (r.FitThroughputs.Count > 0 || !separateRun)
            list.Add((FitSection, Marked(FitSection, md => WriteFit(md, r, separateRun)), PredictSection));
        list.Add((GpuSection, Marked(GpuSection, md => WriteGpu(md, r)), FitSection));
        return list;
    }

    private static string Marked(string name, Action<StringBuilder> write)
    {
        var md = new StringBuilder();
        md.AppendLine($"<!-- section:{name} -->");
        write(md);
        md.AppendLine($"<!-- /section:{name} -->");
        md.AppendLine();
        return md.ToString();
    }

    /// <summary>
    /// Replaces, in the page at <paramref name="path"/>, the sections this partial run measured (and the GPU section),
    /// and notes under the page's header which sections come from which run. Everything else stays as it was.
    /// Returns the names of the sections written.
    /// </summary>
    public static IReadOnlyList<string> Update(BenchmarkResults r, string path)
    {
        string page = File.ReadAllText(path).Replace("\r\n", "\n");
        var written = new List<string>();
        foreach (var (name, text, after) in MlNetSections(r, separateRun: true))
        {
            page = ReplaceSection(page, name, text.Replace("\r\n", "\n"), after: after);
            written.Add(Headings[name].TrimStart('#', ' '));
        }
        if (r.TransformOverheads.Count > 0 || r.PredictLatencies.Count > 0 || r.FitThroughputs.Count > 0)
        {
            var note = new StringBuilder();
            note.AppendLine($"<!-- section:{RunsSection} -->");
            note.AppendLine("> **Sections from later runs.** The measurements under [ML.NET overhead](#mlnet-overhead) and " +
                            "[Training throughput](#training-throughput) come from separate runs of this program with `--update-docs`; each " +
                            "names its command, date and machine at its start. All other measured sections of this page come from the run named above.");
            note.AppendLine($"<!-- /section:{RunsSection} -->");
            note.AppendLine();
            page = ReplaceSection(page, RunsSection, note.ToString(), insertBefore: "## Summary");
        }
        File.WriteAllText(path, page);
        return written;
    }

    /// <summary>
    /// Replaces a marked section; else a section with the same heading (up to the next <c>## </c> heading); else inserts
    /// it before <paramref name="insertBefore"/> or, failing that, at the end.
    /// </summary>
    private static string ReplaceSection(string page, string name, string text, string? insertBefore = null, string? after = null)
    {
        var marked = new Regex($@"<!-- section:{Regex.Escape(name)} -->\n.*?<!-- /section:{Regex.Escape(name)} -->\n\n?", RegexOptions.Singleline);
        if (marked.IsMatch(page)) return marked.Replace(page, _ => text, 1);
        if (Headings.TryGetValue(name, out var heading))
        {
            var unmarked = new Regex($@"(?m)^{Regex.Escape(heading)}\n.*?(?=^## |\z)", RegexOptions.Singleline);
            if (unmarked.IsMatch(page)) return unmarked.Replace(page, _ => text, 1);
        }
        for (string? previous = after; previous is not null; previous = Previous(previous))
        {
            string end = $"<!-- /section:{previous} -->\n";
            int at = page.IndexOf(end, StringComparison.Ordinal);
            if (at < 0) continue;
            at += end.Length;
            if (at < page.Length && page[at] == '\n') at++;
            return page[..at] + text + page[at..];
        }
        if (insertBefore is not null)
        {
            int at = page.IndexOf("\n" + insertBefore + "\n", StringComparison.Ordinal);
            if (at >= 0) return page[..(at + 1)] + text + page[(at + 1)..];
        }
        return page.TrimEnd('\n') + "\n\n" + text;
    }

    /// <summary>The section a section follows on the page, for insertion when the one named is missing.</summary>
    private static string? Previous(string name) => name switch
    {
        GpuSection => FitSection,
        FitSection => PredictSection,
        PredictSection => TransformSection,
        TransformSection => OverheadSection,
        _ => null,
    };

    private static string FilterText(BenchmarkResults r) => string.Join(" ", r.Filter.Patterns.Select(x => x.Contains('*') ? $"'{x}'" : x));

    /// <summary>The machine in one line: CPU, cores, memory, OS, .NET, device.</summary>
    private static string Machine(BenchmarkResults r)
    {
        var m = r.Machine;
        return $"on {m.Cpu}, {m.LogicalCores} logical cores ({m.TorchThreads} libtorch threads), {m.Memory}, {m.OperatingSystem}, {m.DotNet}, " +
               $"TorchSharp {m.TorchSharp}, device {r.Device}";
    }

    private static void WriteProvenance(StringBuilder md, BenchmarkResults r, bool separateRun)
    {
        string flags = r.Profile.Name switch { "quick" => " --quick", "smoke" => " --smoke", _ => "" };
        md.AppendLine(separateRun
            ? $"*Measured by a separate run of `{Command} {FilterText(r)}{flags} --update-docs` on {r.Machine.StartedUtc:yyyy-MM-dd HH:mm} (UTC), " +
              $"{Machine(r)}; profile {r.Profile.Name}; load average (1/5/15 min) {r.Machine.LoadAverageAtStart} at the start, {r.LoadAverageAtEnd} at the end.*"
            : $"*Measured in the run named at the top of this page (profile {r.Profile.Name}, device {r.Device}).*");
        md.AppendLine();
    }

    private static void WriteNoise(StringBuilder md, BenchmarkResults r)
    {
        md.AppendLine($"- **Noise.** Other processes may share the machine's {r.Machine.LogicalCores} cores (the load averages above tell: " +
                      $"about {r.Machine.LogicalCores} is this program alone), so absolute rates can be noisy. The ratios cancel most of it: " +
                      "the two sides run back to back in every round, in alternating order (A B, then B A, …), and the ratio reported is the " +
                      "**median of the per-round ratios**; rates are medians over the rounds.");
    }

    // ---------------------------------------------------------------- overhead

    private static void WriteOverheadIntro(StringBuilder md, BenchmarkResults r)
    {
        md.AppendLine(Headings[OverheadSection]);
        md.AppendLine();
        md.AppendLine("What the ML.NET face of the component costs on top of the network it runs. Both sides run the transformer's own " +
                      "network (the same object, eval mode, no gradients) on the same rows with the same batch size:");
        md.AppendLine();
        md.AppendLine("- **ML.NET**: `transformer.Transform(data)` read by a row cursor that asks for the output column only and calls its " +
                      "`VBuffer<float>` getter for every row, as a downstream trainer does; or `PredictionEngine.Predict(row)` for one row. " +
                      "The input is an in-memory `IDataView` (`LoadFromEnumerable`) of rows with a fixed-size vector column. This includes " +
                      "everything the component does per batch: reading the rows (through a second, read-ahead cursor in `Transform`), " +
                      "checking them (finite values, ids inside the vocabulary), building the input and mask tensors, the forward pass, " +
                      "pooling, the copy of the (B, C) result into managed memory, and the copy of each row into the consumer's buffer.");
        md.AppendLine("- **Raw**: the network's `forward` on tensors built once beforehand (the same batches, masks included), mean pooling, " +
                      "and the copy of the (B, C) result to a managed array: what a hand-written TorchSharp loop over prepared tensors costs.");
        md.AppendLine("- Rows have a real length drawn between N/2 and N and are padded after it (padding id 0, or mask false for floats), " +
                      "so masks are used as in real data; weights are untrained (`Epochs = 0`: speed does not depend on them).");
        WriteNoise(md, r);
        md.AppendLine();
    }

    private static void WriteTransform(StringBuilder md, BenchmarkResults r, bool separateRun)
    {
        md.AppendLine(Headings[TransformSection]);
        md.AppendLine();
        if (r.TransformOverheads.Count == 0)
        {
            md.AppendLine($"Not measured in this run (select `overhead/transform`, e.g. `{Command} overhead --update-docs`).");
            md.AppendLine();
            return;
        }
        WriteProvenance(md, r, separateRun);
        var s = r.Profile.MlNet;
        md.AppendLine($"{s.TransformRows} rows per pass; 1 untimed warm-up pass of each part and 2 of each side, then {s.TransformRounds} " +
                      "timed round(s). *Parts*, each timed alone in the same rounds: *read rows* = an `IDataView` cursor over the input " +
                      "feeding the library's row reader into batches (no tensors); *build tensors* = turning the prepared batches into " +
                      "tensors; *rest* = ML.NET − raw − read rows − build tensors: the cursor machinery and copies the parts do not cover " +
                      "(negative when noise exceeds it).");
        md.AppendLine();
        md.AppendLine($"Goal: ML.NET ≥ {OverheadGoal:0.0} × raw throughput.");
        md.AppendLine();
        md.AppendLine("| model | ML.NET rows/s | raw rows/s | ratio | per-round ratios | goal |");
        md.AppendLine("| --- | ---: | ---: | ---: | --- | --- |");
        foreach (var x in r.TransformOverheads)
            md.AppendLine($"| {x.Model.Describe} | {x.MlNetRowsPerSecond:F1} | {x.RawRowsPerSecond:F1} | **{x.Ratio:F2}** | " +
                          $"{string.Join(", ", x.PairedRatios.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)))} | {Verdict(x.Ratio)} |");
        md.AppendLine();
        md.AppendLine("Where the time of one pass goes (median ms per pass; shares of the ML.NET pass):");
        md.AppendLine();
        md.AppendLine("| model | ML.NET pass | raw network | read rows | build tensors | rest |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var x in r.TransformOverheads)
        {
            double total = x.MlNet.MedianMs, rest = total - x.Raw.MedianMs - x.ReadRows.MedianMs - x.BuildTensors.MedianMs;
            md.AppendLine($"| {x.Model.Name}, N = {x.Model.SequenceLength} | {total:F1} | {x.Raw.MedianMs:F1} ({Pct(x.Raw.MedianMs / total)}) | " +
                          $"{x.ReadRows.MedianMs:F1} ({Pct(x.ReadRows.MedianMs / total)}) | {x.BuildTensors.MedianMs:F1} ({Pct(x.BuildTensors.MedianMs / total)}) | " +
                          $"{rest:F1} ({Pct(rest / total)}) |");
        }
        md.AppendLine();
        foreach (var x in r.TransformOverheads)
            md.AppendLine($"- {x.Model.Name}, N = {x.Model.SequenceLength}: {TransformVerdictText(x)}");
        md.AppendLine();
    }

    private static void WritePredict(StringBuilder md, BenchmarkResults r, bool separateRun)
    {
        md.AppendLine(Headings[PredictSection]);
        md.AppendLine();
        if (r.PredictLatencies.Count == 0)
        {
            md.AppendLine($"Not measured in this run (select `overhead/predict`, e.g. `{Command} overhead --update-docs`).");
            md.AppendLine();
            return;
        }
        WriteProvenance(md, r, separateRun);
        var s = r.Profile.MlNet;
        foreach (var p in r.PredictLatencies)
        {
            md.AppendLine($"{p.Model.Describe}: {p.Engine.Repetitions} timed single-row calls of each side after {s.PredictWarmups} warm-up " +
                          $"calls; the sides alternate {(s.PredictBlock == 1 ? "call by call (A B B A …)" : $"in blocks of {s.PredictBlock} calls")}; " +
                          "32 distinct rows in turn. The ratio is the median over pairs of neighbouring calls of raw time ÷ engine time.");
            md.AppendLine();
            md.AppendLine("| | median ms | p95 ms | min ms |");
            md.AppendLine("| --- | ---: | ---: | ---: |");
            md.AppendLine($"| `engine.Predict(row)` | {p.Engine.MedianMs:F2} | {p.Engine.Percentile(0.95):F2} | {p.Engine.MinMs:F2} |");
            md.AppendLine($"| raw network, batch of 1 (prepared tensors) | {p.Raw.MedianMs:F2} | {p.Raw.Percentile(0.95):F2} | {p.Raw.MinMs:F2} |");
            md.AppendLine();
            md.AppendLine($"Raw ÷ engine: **{p.Ratio:F2}** ({Verdict(p.Ratio)}); the engine's median is {p.Engine.MedianMs - p.Raw.MedianMs:F2} ms " +
                          "above the raw forward's. Per call the engine reads the row object into an ML.NET row, reads and checks the sequence, " +
                          "builds the tensors of a batch of one, runs the forward and copies the output into a new `float[]` of the output object.");
            md.AppendLine();
        }
    }

    private static string Verdict(double ratio) => ratio >= OverheadGoal
        ? "meets the goal"
        : $"**misses the goal by {OverheadGoal - ratio:F2}**";

    private static string TransformVerdictText(TransformOverheadResult x)
    {
        double total = x.MlNet.MedianMs;
        double rest = total - x.Raw.MedianMs - x.ReadRows.MedianMs - x.BuildTensors.MedianMs;
        var parts = new[] { ("reading rows", x.ReadRows.MedianMs), ("building tensors", x.BuildTensors.MedianMs), ("the rest", Math.Max(0, rest)) }
            .OrderByDescending(p => p.Item2).ToList();
        double overhead = total - x.Raw.MedianMs;
        string where = $"of the {Math.Max(0, overhead):F1} ms per pass that ML.NET adds (medians), {parts[0].Item1} takes {parts[0].Item2:F1} ms, " +
                       $"{parts[1].Item1} {parts[1].Item2:F1} ms and {parts[2].Item1} {parts[2].Item2:F1} ms";
        return x.Ratio >= OverheadGoal
            ? $"ML.NET reaches {Pct(x.Ratio)} of the raw throughput: the forward pass dominates; {where}."
            : $"ML.NET reaches {Pct(x.Ratio)} of the raw throughput, {OverheadGoal - x.Ratio:F2} short of the goal; {where}.";
    }

    // ---------------------------------------------------------------- fit

    private static void WriteFit(StringBuilder md, BenchmarkResults r, bool separateRun)
    {
        md.AppendLine(Headings[FitSection]);
        md.AppendLine();
        if (r.FitThroughputs.Count == 0)
        {
            md.AppendLine($"Not measured in this run (select `fit`, e.g. `{Command} overhead fit --update-docs`).");
            md.AppendLine();
            return;
        }
        WriteProvenance(md, r, separateRun);
        foreach (var f in r.FitThroughputs)
        {
            int steps = (f.Rows + f.Model.Batch - 1) / f.Model.Batch * f.Epochs;
            bool quickStart = f.Model is { Tokens: true, SequenceLength: 1024, Vocabulary: 50257, Width: 64, ProjectedLength: 64, Heads: 4, Depth: 2, Batch: 16 };
            md.AppendLine($"`Fit` of {(quickStart ? "the README's quick-start model" : "a token model")} ({f.Model.Describe}; binary classification head on a Boolean label; the options' " +
                          $"defaults otherwise: dropout 0.1, AdamW with learning rate {LinformerEstimator.Defaults.LearningRate}, weight decay " +
                          $"{LinformerEstimator.Defaults.WeightDecay}, warm-up and linear decay, gradient clipping at {LinformerEstimator.Defaults.GradientClipNorm}; " +
                          $"no validation) on {f.Rows} rows for {f.Epochs} epoch(s) = {steps} optimizer steps, against a raw TorchSharp loop on the " +
                          "same network (built from the same settings):");
            md.AppendLine();
            md.AppendLine("- **Fit**: `estimator.Fit(data)` from an in-memory `IDataView`, timed from the call to its return: it reads and checks " +
                          "every row into memory, builds the network, trains (shuffling, batches to tensors, forward, loss, backward, clipping, " +
                          "AdamW step, learning-rate schedule, loss and accuracy read back every step, a progress report after every step) and " +
                          "returns the transformer.");
            md.AppendLine("- **Raw**: the same batches as tensors built beforehand (untimed, as is building the network); timed: creating AdamW, then " +
                          "per step `zero_grad`, forward, head, cross-entropy, backward, `clip_grad_norm_`, `step` — the loop one would write by hand.");
            md.AppendLine($"- One untimed warm-up of each side on {Math.Min(f.Rows, 2 * f.Model.Batch)} rows, then {f.Fit.Repetitions} round(s); " +
                          "*per step* is the median time between consecutive optimizer steps (Fit's from its after-every-step progress " +
                          "reports), which leaves out Fit's fixed costs.");
            WriteNoise(md, r);
            md.AppendLine();
            md.AppendLine("| | whole run, median ms | sequences/s | per step, median ms | per-step sequences/s |");
            md.AppendLine("| --- | ---: | ---: | ---: | ---: |");
            md.AppendLine($"| `Fit` | {f.Fit.MedianMs:F0} | {f.FitSequencesPerSecond:F2} | {f.FitStep.MedianMs:F1} | {f.Model.Batch / (f.FitStep.MedianMs * 1e-3):F2} |");
            md.AppendLine($"| raw loop | {f.Raw.MedianMs:F0} | {f.RawSequencesPerSecond:F2} | {f.RawStep.MedianMs:F1} | {f.Model.Batch / (f.RawStep.MedianMs * 1e-3):F2} |");
            md.AppendLine();
            double fixedMs = f.Fit.MedianMs - steps * f.FitStep.MedianMs;
            md.AppendLine($"Fit ÷ raw throughput: **{f.Ratio:F2}** for the whole run (per-round ratios " +
                          $"{string.Join(", ", f.PairedRatios.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)))}; {Verdict(f.Ratio)} of " +
                          $"{OverheadGoal:0.0}), **{f.StepRatio:F2}** per step. Of Fit's {f.Fit.MedianMs:F0} ms, about {Math.Max(0, fixedMs):F0} ms " +
                          $"({Pct(Math.Max(0, fixedMs) / f.Fit.MedianMs)}) are outside the steady-state steps ({steps} × {f.FitStep.MedianMs:F1} ms): reading " +
                          "the rows into memory, building the network, the first step's one-time costs; a run of more steps spreads them thinner. " +
                          (f.StepRatio > 1.1
                              ? $"**Caveat:** per step the raw loop came out {1 / f.StepRatio:F2}× Fit's speed, i.e. slower, although Fit does strictly " +
                                "more work per step (tensors from arrays, two `item` read-backs, schedule, progress). The two loops differ otherwise only in " +
                                "the learning-rate values (Fit's warm-up and decay vs a constant rate) and the batch order, which should not change the " +
                                "arithmetic. This is not understood yet (on this loaded machine it may be a measurement artefact); read the ratio as " +
                                "\"no measurable training overhead\", not as a speed-up."
                              : f.StepRatio >= OverheadGoal
                              ? "Per step, Fit runs at the raw loop's speed within the goal."
                              : $"Per step, Fit is {f.FitStep.MedianMs - f.RawStep.MedianMs:F1} ms slower than the raw loop: it builds the batch's tensors, " +
                                "reads the loss and the accuracy back (two synchronising `item` calls) and reports progress."));
            md.AppendLine();
        }
    }

    // ---------------------------------------------------------------- GPU

    private static void WriteGpu(StringBuilder md, BenchmarkResults r)
    {
        md.AppendLine(Headings[GpuSection]);
        md.AppendLine();
        if (r.Device != "CPU")
            md.AppendLine($"The numbers of the run that wrote this section were measured on {r.Device}.");
        else
            md.AppendLine("**No CUDA run.** Every number on this page was measured on the CPU: no GPU was available to the project " +
                          "during this work (its build and test machines have none, and TorchSharp's CUDA runtime packages were not on its " +
                          "package feed), so the benchmarks could not be run on CUDA.");
        md.AppendLine();
        md.AppendLine("How to run them on a machine with an NVIDIA GPU and driver. The program takes `--device cuda` (or `cuda:1`, …); " +
                      "without a usable CUDA libtorch it stops with exit code 3 and says why. It needs a CUDA build of libtorch that " +
                      "TorchSharp 0.107 can load (libtorch 2.10), by either route:");
        md.AppendLine();
        md.AppendLine("```sh");
        md.AppendLine("# 1. Build against TorchSharp's CUDA runtime package instead of TorchSharp-cpu (needs TorchSharp-cuda-linux 0.107.0 on your feed):");
        md.AppendLine("dotnet publish benchmarks/Linformer.MLNet.Benchmarks -c Release -r linux-x64 --self-contained -p:TorchSharpRuntime=cuda-linux -o out/bench-cuda");
        md.AppendLine("out/bench-cuda/Linformer.MLNet.Benchmarks '*' --device cuda --out results-cuda");
        md.AppendLine();
        md.AppendLine("# 2. Or use a libtorch 2.10 CUDA build already on the machine (the lib/ folder of a libtorch download or of a PyTorch install):");
        md.AppendLine("dotnet publish benchmarks/Linformer.MLNet.Benchmarks -c Release -r linux-x64 --self-contained -o out/bench");
        md.AppendLine("out/bench/Linformer.MLNet.Benchmarks '*' --device cuda --libtorch /path/to/libtorch/lib --out results-cuda");
        md.AppendLine("```");
        md.AppendLine();
        md.AppendLine("On CUDA every timed iteration ends with `torch.cuda.synchronize()`, peak memory is not measured (the resident-set method " +
                      "sees host memory only) and the part-by-part profile is skipped (it is written for the CPU). The ML.NET sections set " +
                      "`MLContext.GpuDeviceId` with `FallbackToCpu = false`. A libtorch of another minor version than 2.10 may not match " +
                      "TorchSharp's native layer; route 2 is then a matter of trying.");
        md.AppendLine();
    }
}
