using System.Text.RegularExpressions;

namespace Linformer.MLNet.Benchmarks;

/// <summary>
/// Selects benchmark cases by id, BenchmarkDotNet-style: glob patterns (<c>*</c>, <c>?</c>), case-insensitive.
/// A pattern also selects every case below it, so <c>layer</c> means <c>layer/*</c>. Case ids:
/// <c>matmul/2048</c>, <c>layer/inference/linformer-k128-layerwise/4096</c>, <c>layer/training/full-fused/1024</c>,
/// <c>profile/linformer-k128-none/4096</c>.
/// </summary>
internal sealed class CaseFilter(IReadOnlyList<string> patterns)
{
    private readonly Regex[] regexes = patterns.Select(ToRegex).ToArray();

    public bool Matches(string caseId) => regexes.Any(r => r.IsMatch(caseId));

    private static Regex ToRegex(string pattern)
    {
        string body = Regex.Escape(pattern.Trim().TrimEnd('/')).Replace(@"\*", ".*").Replace(@"\?", ".");
        return new Regex($"^{body}(/.*)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    }
}
