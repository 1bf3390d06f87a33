using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

/// <summary>What the numbers were measured on, read from the running system, for the log and the tables' file.</summary>
internal static class MachineInfo
{
    /// <summary>CPU (with its SIMD flags), cores, libtorch threads, memory, OS, .NET and TorchSharp in one line.</summary>
    public static string Describe()
    {
        string torchSharp = typeof(TorchSharp.torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "?";
        return $"{Cpu()}, {Environment.ProcessorCount} logical cores, {get_num_threads()} libtorch threads, {Memory()}, " +
               $"{RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, TorchSharp {torchSharp}";
    }

    /// <summary>The 1-, 5- and 15-minute load averages (<c>/proc/loadavg</c>): other work on the machine shows here.</summary>
    public static string LoadAverage() => Read("/proc/loadavg", text => string.Join(" / ", text.Split(' ').Take(3)));

    private static string Cpu() => Read("/proc/cpuinfo", text =>
    {
        var lines = text.Split('\n');
        string model = lines.First(l => l.StartsWith("model name", StringComparison.Ordinal)).Split(':', 2)[1].Trim();
        var flags = lines.First(l => l.StartsWith("flags", StringComparison.Ordinal)).Split(' ');
        return $"{model} ({string.Join(", ", new[] { "avx512f", "avx512_bf16", "avx2", "fma" }.Where(flags.Contains))})";
    }, RuntimeInformation.ProcessArchitecture.ToString());

    private static string Memory() => Read("/proc/meminfo", text =>
    {
        long kb = long.Parse(text.Split('\n')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        return $"{kb / 1024.0 / 1024.0:F1} GiB";
    });

    private static string Read(string path, Func<string, string> parse, string fallback = "n/a")
    {
        try { return parse(File.ReadAllText(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or IndexOutOfRangeException or FormatException) { return fallback; }
    }
}
