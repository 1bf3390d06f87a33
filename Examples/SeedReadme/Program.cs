// The linformer-pytorch README example, line by line, in C#:
//
//   model = Linformer(input_size=262144, channels=64, dim_d=None, dim_k=128, dim_ff=128, dropout_ff=0.15,
//                     nhead=4, depth=2, dropout=0.1, activation="gelu", checkpoint_level="C0",
//                     parameter_sharing="layerwise", k_reduce_by_layer=0, full_attention=False,
//                     include_ff=True, w_o_intermediate_dim=None).cuda()
//   x = torch.randn(1, 262144, 64).cuda()
//   y = model(x)
//   print(y)  # (1, 262144, 64)
//
// The seed runs it with N = 262144 on a GPU.
//
//   dotnet run --project Examples/SeedReadme [-- N]        one run, N defaults to 16384 for a quick CPU run
//   dotnet run --project Examples/SeedReadme -- --max [L]  N = 16384, 32768, … doubling while the next one is predicted
//                                                          to fit in 60% of the available memory (and N ≤ L if given)
using System.Diagnostics;
using System.Globalization;
using Linformer.MLNet;
using Linformer.MLNet.Examples;
using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

var device = cuda.is_available() ? CUDA : CPU;
Console.WriteLine($"device: {device.type}");

if (args.Length > 0 && args[0] == "--max")
{
    long limit = args.Length > 1 ? long.Parse(args[1], CultureInfo.InvariantCulture) : long.MaxValue;
    long available = AvailableMemoryBytes();
    Console.WriteLine($"available memory at start: {available / 1073741824.0:F1} GiB; budget per run: 60% of it; batch 1");
    Console.WriteLine($"{"N",10} {"forward",10} {"peak memory",12} {"output",20}");
    for (long size = 16384; size <= limit; size *= 2)
    {
        var r = Run((int)size, print: false);
        Console.WriteLine($"{size,10} {r.Seconds,9:F2}s {r.PeakBytes / 1048576.0,8:F0} MiB {r.Shape,20}");
        // Memory grows linearly in N for Linformer: the next N needs about twice this run's peak.
        if (2 * r.PeakBytes > 0.6 * available)
        {
            Console.WriteLine($"stop: N = {2 * size} would need about {2 * r.PeakBytes / 1073741824.0:F1} GiB, over 60% of the {available / 1073741824.0:F1} GiB available");
            break;
        }
    }
    return;
}

Run(args.Length > 0 && int.TryParse(args[0], out var parsed) ? parsed : 16384, print: true);

Result Run(int n, bool print)
{
    using var memory = new PeakMemory();   // model, input and forward: the peak above what the process held before
    using var model = new LinformerEncoder(new LinformerEncoderOptions
    {
        SequenceLength = n,            // input_size
        ModelWidth = 64,               // channels
        HeadWidth = null,              // dim_d
        ProjectedLength = 128,         // dim_k
        FeedForwardSize = 128,         // dim_ff
        FeedForwardDropout = 0.15,     // dropout_ff
        Heads = 4,                     // nhead
        Depth = 2,                     // depth
        Dropout = 0.1,                 // dropout
        Activation = Activation.Gelu,  // activation
        Sharing = ParameterSharing.Layerwise,      // parameter_sharing
        ProjectedLengthReductionPerLayer = 0,      // k_reduce_by_layer
        FullAttention = false,         // full_attention
        IncludeFeedForward = true,     // include_ff
        OutputIntermediateSize = null, // w_o_intermediate_dim
    }).to(device);
    model.eval();

    using var x = randn(1, n, 64, device: device);
    var watch = Stopwatch.StartNew();
    Tensor y;
    using (no_grad()) y = model.forward(x);
    watch.Stop();
    using (y)
    {
        var result = new Result(watch.Elapsed.TotalSeconds, memory.PeakAboveStart, $"({string.Join(", ", y.shape)})");
        if (print)
        {
            Console.WriteLine($"N: {n}");
            Console.WriteLine($"input:  ({string.Join(", ", x.shape)})");
            Console.WriteLine($"output: {result.Shape}");
            Console.WriteLine($"parameters: {model.ParameterCount:N0}");
            Console.WriteLine($"forward time: {watch.Elapsed.TotalMilliseconds:F0} ms");
            Console.WriteLine($"peak memory of this run (model, input, forward): {result.PeakBytes / 1048576.0:N0} MiB — {PeakMemory.Method}");
            Console.WriteLine($"process peak working set: {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:N0} MiB");
        }
        return result;
    }
}

static long AvailableMemoryBytes()
{
    // Linux: MemAvailable (what can be used without swapping); elsewhere what .NET sees as available.
    if (OperatingSystem.IsLinux() && File.Exists("/proc/meminfo"))
        foreach (var line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                return long.Parse(line["MemAvailable:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
}

internal sealed record Result(double Seconds, long PeakBytes, string Shape);
