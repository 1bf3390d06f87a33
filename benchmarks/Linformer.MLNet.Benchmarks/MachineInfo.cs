using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using static TorchSharp.torch;

namespace Linformer.MLNet.Benchmarks;

/// <summary>What the numbers were measured on: read from the running system, never typed in.</summary>
internal sealed record MachineInfo(string Cpu, int LogicalCores, int TorchThreads, string Memory, string OperatingSystem,
    string DotNet, string TorchSharp, string LibTorch, string LoadAverageAtStart, DateTime StartedUtc)
{
    public static MachineInfo Read() => new(
        Cpu: CpuModel(),
        LogicalCores: Environment.ProcessorCount,
        TorchThreads: get_num_threads(),
        Memory: TotalMemory(),
        OperatingSystem: OsName(),
        DotNet: RuntimeInformation.FrameworkDescription,
        TorchSharp: typeof(TorchSharp.torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
            ?? typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown",
        LibTorch: LibTorchPackage(),
        LoadAverageAtStart: LoadAverage(),
        StartedUtc: DateTime.UtcNow);

    /// <summary>The 1-, 5- and 15-minute load averages (<c>/proc/loadavg</c>): other work on the machine shows here.</summary>
    public static string LoadAverage()
    {
        try { return string.Join(" / ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "n/a"; }
    }

    private static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null)
            {
                var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
                var simd = new[] { "avx512f", "avx2", "fma" }.Where(f => flags.Split(' ').Contains(f));
                return $"{line[(line.IndexOf(':') + 1)..].Trim()} ({string.Join(", ", simd)})";
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    private static string TotalMemory()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            long kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            return $"{kb / 1024.0 / 1024.0:F1} GiB";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException) { return "n/a"; }
    }

    private static string OsName()
    {
        string kernel = RuntimeInformation.OSDescription;
        try { kernel = $"Linux {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}"; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        try
        {
            var pretty = File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal));
            if (pretty is not null) return $"{pretty["PRETTY_NAME=".Length..].Trim('"')} ({kernel})";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return kernel;
    }

    /// <summary>The libtorch native package this program was built against, from its deps.json (libtorch has no version call in TorchSharp).</summary>
    private static string LibTorchPackage()
    {
        try
        {
            string deps = Path.Combine(AppContext.BaseDirectory, Assembly.GetEntryAssembly()!.GetName().Name + ".deps.json");
            using var doc = JsonDocument.Parse(File.ReadAllText(deps));
            var names = doc.RootElement.GetProperty("libraries").EnumerateObject().Select(p => p.Name)
                .Where(n => n.StartsWith("libtorch-cpu", StringComparison.OrdinalIgnoreCase)).ToList();
            var platform = names.FirstOrDefault(n => n.Contains("linux-x64", StringComparison.OrdinalIgnoreCase)) ?? names.FirstOrDefault();
            if (platform is not null) return platform.Replace('/', ' ');
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException) { }
        return "unknown";
    }
}
