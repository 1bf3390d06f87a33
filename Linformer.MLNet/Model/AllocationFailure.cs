using System.Globalization;
using System.Text.RegularExpressions;

namespace Linformer.MLNet.Model;

/// <summary>
/// Recognises libtorch's allocation failures (CPU: "DefaultCPUAllocator: can't allocate memory: you tried to allocate
/// N bytes"; CUDA: "CUDA out of memory. Tried to allocate …") and turns them into an
/// <see cref="InsufficientMemoryException"/> that says what was being computed and what to change.
/// </summary>
internal static partial class AllocationFailure
{
    [GeneratedRegex(@"(?:tried to allocate|Tried to allocate)\s+([0-9.]+)\s*(bytes|B|KiB|MiB|GiB|TiB)?", RegexOptions.CultureInvariant)]
    private static partial Regex RequestedPattern();

    /// <summary>True for libtorch's out-of-memory errors (never for cancellation or our own argument errors).</summary>
    public static bool Is(Exception ex)
    {
        if (ex is InsufficientMemoryException or OperationCanceledException or ObjectDisposedException) return false;
        if (ex is OutOfMemoryException) return true;
        var message = ex.Message;
        return message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase)
            || message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
            || message.Contains("Cannot allocate memory", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The bytes libtorch asked for, when its message says.</summary>
    public static long? RequestedBytes(string message)
    {
        var m = RequestedPattern().Match(message);
        if (!m.Success || !double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)) return null;
        double scale = m.Groups[2].Value switch { "KiB" => 1L << 10, "MiB" => 1L << 20, "GiB" => 1L << 30, "TiB" => 1L << 40, _ => 1 };
        return (long)Math.Min(long.MaxValue, value * scale);
    }

    /// <summary>
    /// The exception to throw instead of <paramref name="ex"/>: <paramref name="what"/> names the work
    /// (e.g. "Encoding a batch of 16 sequences"), and the message names the sequence length, the batch size, the bytes
    /// requested and what to change.
    /// </summary>
    public static InsufficientMemoryException Wrap(Exception ex, string what, int sequenceLength, int batchSize, string device)
    {
        long? bytes = RequestedBytes(ex.Message);
        string requested = bytes is { } b ? string.Create(CultureInfo.InvariantCulture, $"{b:N0} bytes ({Describe(b)})") : "an unknown amount";
        return new InsufficientMemoryException(string.Create(CultureInfo.InvariantCulture, 
            $"{what} (SequenceLength {sequenceLength}, BatchSize {batchSize}, on {device}) needs more memory than is available: " +
            $"libtorch could not allocate {requested}. Lower BatchSize, ProjectedLength, FeedForwardSize or SequenceLength, " +
            $"or use a GPU with more memory (MLContext.GpuDeviceId). Native error: {FirstLine(ex.Message)}"), ex);
    }

    private static string Describe(long bytes) => bytes switch
    {
        >= 1L << 40 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 40):F1} TiB"),
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F1} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F1} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KiB"),
    };

    private static string FirstLine(string message)
    {
        int end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}
