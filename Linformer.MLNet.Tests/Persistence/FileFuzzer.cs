using System.Buffers.Binary;
using System.IO.Compression;
using System.Reflection;
using System.Text.Json.Nodes;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>What a mutated file may do when it loads.</summary>
internal enum FuzzExpectation
{
    /// <summary>Damage the file's checks must catch: if it loads, it reproduces the original outputs bit for bit.</summary>
    SameModel,
    /// <summary>
    /// A self-consistent edit (the zip CRC and the SHA-256 match, or safetensors bytes, which carry no checksum):
    /// it may load as another model, but then its settings or its weight values differ from the original's.
    /// </summary>
    EditedModel,
}

/// <summary>One mutated file: how it was made (enough to reproduce it with its seed), the bytes, the expectation.</summary>
internal sealed record FuzzCase(int Seed, string Description, byte[] Bytes, FuzzExpectation Expect)
{
    public override string ToString() => $"case seed {Seed}: {Description}";
}

/// <summary>How one case ended.</summary>
internal enum FuzzOutcome { LoadedIdentical, LoadedEdited, Refused }

/// <summary>Counts of a fuzz run: cases, loads, refusals by exception type, and failures with their seeds.</summary>
internal sealed class FuzzTally
{
    public int Cases { get; private set; }
    public int LoadedIdentical { get; private set; }
    public int LoadedEdited { get; private set; }
    public SortedDictionary<string, int> Refused { get; } = new(StringComparer.Ordinal);
    public List<string> Failures { get; } = [];

    public void Add(FuzzOutcome outcome, Exception? refusal = null, bool byMLNet = false)
    {
        Cases++;
        switch (outcome)
        {
            case FuzzOutcome.LoadedIdentical: LoadedIdentical++; break;
            case FuzzOutcome.LoadedEdited: LoadedEdited++; break;
            default:
                var name = refusal!.GetType().Name + (byMLNet ? " (ML.NET, before the Linformer loader)" : "");
                Refused[name] = Refused.GetValueOrDefault(name) + 1;
                break;
        }
    }

    public void Fail(FuzzCase c, string what)
    {
        Cases++;
        Failures.Add($"{c}: {what}");
    }

    public override string ToString()
        => $"{Cases} cases: {LoadedIdentical} loaded with identical outputs, {LoadedEdited} loaded as an edited model, " +
           $"{Refused.Values.Sum()} refused ({string.Join(", ", Refused.Select(kv => $"{kv.Key} {kv.Value}"))}), {Failures.Count} failed";
}

/// <summary>
/// The rules every case is judged by, and byte-level mutations shared by the model-zip and safetensors fuzzers.
/// </summary>
internal static class FileFuzzer
{
    /// <summary>
    /// Exception types a damaged file may be refused with (after ML.NET's <see cref="TargetInvocationException"/> is
    /// unwrapped). <see cref="EndOfStreamException"/> comes from ML.NET itself, reading a cut <c>Schema</c> entry
    /// before any Linformer code runs.
    /// </summary>
    public static readonly Type[] Documented = [typeof(InvalidDataException), typeof(FormatException), typeof(InvalidOperationException), typeof(EndOfStreamException)];

    /// <summary>Exception types that mean a reader trusted a field it should have checked, anywhere in the chain.</summary>
    public static readonly Type[] Unchecked =
    [
        typeof(NullReferenceException), typeof(IndexOutOfRangeException), typeof(ArgumentOutOfRangeException), typeof(ArgumentNullException),
        typeof(OverflowException), typeof(OutOfMemoryException), typeof(DivideByZeroException), typeof(AccessViolationException),
        typeof(InvalidCastException), typeof(KeyNotFoundException), typeof(NotSupportedException), typeof(NotImplementedException),
        typeof(System.Runtime.InteropServices.ExternalException),
    ];

    /// <summary>ML.NET calls loaders through reflection: the loader's own exception is the inner one.</summary>
    public static Exception Unwrap(Exception e)
    {
        while (e is TargetInvocationException { InnerException: { } inner }) e = inner;
        return e;
    }

    /// <summary>
    /// Whether ML.NET refused the file before the Linformer loader ran: while reading its own entries (the
    /// <c>Schema</c> entry, the component header, the loader assembly named there). Its exceptions are ML.NET's to word.
    /// </summary>
    public static bool BeforeLinformerLoader(Exception e)
        => !e.ToString().Contains("Linformer.MLNet.LinformerTransformer.Create", StringComparison.Ordinal);

    /// <summary>Exception types that would mean a crash-like failure even inside ML.NET's own reading.</summary>
    private static readonly Type[] Crashes =
        [typeof(NullReferenceException), typeof(IndexOutOfRangeException), typeof(AccessViolationException), typeof(OutOfMemoryException)];

    /// <summary>Null when ML.NET's own refusal (before the Linformer loader) is not a crash and has a message.</summary>
    public static string? JudgeMLNetRefusal(Exception e)
    {
        var top = Unwrap(e);
        return Crashes.Any(t => t.IsInstanceOfType(top)) || string.IsNullOrWhiteSpace(top.Message)
            ? $"ML.NET failed with {top.GetType().FullName} before the Linformer loader ran: {Chain(e)}"
            : null;
    }

    /// <summary>Null when <paramref name="e"/> is a clear refusal; otherwise what is wrong with it.</summary>
    public static string? JudgeRefusal(Exception e)
    {
        var top = Unwrap(e);
        if (!Documented.Any(t => t == top.GetType()))
            return $"refused with {top.GetType().FullName} (documented: {string.Join(", ", Documented.Select(t => t.Name))}): {Chain(e)}";
        if (string.IsNullOrWhiteSpace(top.Message))
            return $"refused with an empty message: {Chain(e)}";
        return UncheckedInside(e);
    }

    /// <summary>
    /// Null when a loaded model's <c>Transform</c> refused the rows clearly: a documented type, or ML.NET's
    /// <see cref="ArgumentOutOfRangeException"/> for a column the schema lacks, thrown by Linformer's own checks.
    /// </summary>
    public static string? JudgeTransformRefusal(Exception e)
    {
        var top = Unwrap(e);
        if (top is ArgumentOutOfRangeException && FromLinformer(top) && top.Message.Contains("column", StringComparison.Ordinal))
            return top.InnerException is null ? null : UncheckedInside(top.InnerException);
        return JudgeRefusal(e);
    }

    private static string? UncheckedInside(Exception e)
    {
        for (var x = Unwrap(e); x is not null; x = x.InnerException)
            // Argument exceptions Linformer's own validation throws on purpose (a stored setting out of range) are checks.
            if (Unchecked.Any(t => t.IsInstanceOfType(x)) && !(x is ArgumentException && FromLinformer(x)))
                return $"refused, but after an unchecked {x.GetType().FullName} inside: {Chain(e)}";
        return null;
    }

    /// <summary>Whether the library itself threw <paramref name="e"/> (not the BCL, ML.NET or TorchSharp).</summary>
    private static bool FromLinformer(Exception e)
        => e.TargetSite?.DeclaringType?.Namespace is { } ns && ns.StartsWith("Linformer.MLNet", StringComparison.Ordinal)
           && !ns.StartsWith("Linformer.MLNet.Tests", StringComparison.Ordinal);

    public static string Chain(Exception e)
    {
        var parts = new List<string>();
        for (var x = e; x is not null; x = x.InnerException) parts.Add($"{x.GetType().Name}: {x.Message}");
        return string.Join(" | ", parts);
    }

    public static bool BitIdentical(IReadOnlyList<float[]> expected, IReadOnlyList<float[]> actual)
    {
        if (expected.Count != actual.Count) return false;
        for (int i = 0; i < expected.Count; i++)
        {
            if (expected[i].Length != actual[i].Length) return false;
            for (int j = 0; j < expected[i].Length; j++)
                if (BitConverter.SingleToInt32Bits(expected[i][j]) != BitConverter.SingleToInt32Bits(actual[i][j])) return false;
        }
        return true;
    }

    // ------------------------------------------------------------ byte mutations

    /// <summary>Values that break length and offset fields: zero, one, negative, around the 16/31/32/63/64-bit limits.</summary>
    public static readonly ulong[] HugeValues =
    [
        0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF,
        0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE, 1UL << 40, 1UL << 50, 100_000_000, 1_000_000_000,
    ];

    public static ulong PickHuge(Random r, ulong near)
        => r.Next(4) switch
        {
            0 => near + 1,
            1 => near - 1,
            2 => near * 2,
            _ => HugeValues[r.Next(HugeValues.Length)],
        };

    /// <summary>A random damage to <paramref name="bytes"/> in [<paramref name="from"/>, <paramref name="to"/>), described.</summary>
    public static (byte[] Bytes, string Description) Damage(Random r, byte[] bytes, int from, int to, string where)
    {
        var b = (byte[])bytes.Clone();
        int span = Math.Max(1, to - from);
        int at = from + r.Next(span);
        switch (r.Next(10))
        {
            case 0:
            case 1:
            {
                int bit = r.Next(8);
                b[at] ^= (byte)(1 << bit);
                return (b, $"{where}: bit {bit} of byte {at} flipped");
            }
            case 2:
            {
                byte v = (byte)r.Next(256);
                b[at] = v == b[at] ? (byte)~v : v;
                return (b, $"{where}: byte {at} set to 0x{b[at]:X2}");
            }
            case 3:
            {
                int n = 1 + r.Next(Math.Min(64, bytes.Length - at));
                for (int i = 0; i < n; i++) b[at + i] = (byte)r.Next(256);
                return (b, $"{where}: {n} random bytes written at {at}");
            }
            case 4:
            {
                int cut = from + r.Next(span);
                return (bytes[..cut], $"{where}: truncated to {cut} of {bytes.Length} bytes");
            }
            case 5:
            {
                var extra = new byte[1 + r.Next(r.Next(2) == 0 ? 16 : 4096)];
                if (r.Next(2) == 0) r.NextBytes(extra);
                return ([.. bytes, .. extra], $"{where}: {extra.Length} bytes appended");
            }
            case 6:
            {
                var extra = new byte[1 + r.Next(64)];
                r.NextBytes(extra);
                return ([.. bytes[..at], .. extra, .. bytes[at..]], $"{where}: {extra.Length} bytes inserted at {at}");
            }
            case 7:
            {
                int n = 1 + r.Next(Math.Min(64, bytes.Length - at));
                return ([.. bytes[..at], .. bytes[(at + n)..]], $"{where}: {n} bytes removed at {at}");
            }
            default:
            {
                // A 2-, 4- or 8-byte little-endian field overwritten with a huge or off-by-one value.
                int width = new[] { 2, 4, 8 }[r.Next(3)];
                at = Math.Min(at, bytes.Length - width);
                if (at < 0) return (bytes[..0], $"{where}: emptied");
                ulong old = width switch
                {
                    2 => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at)),
                    4 => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at)),
                    _ => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at)),
                };
                ulong value = PickHuge(r, old);
                switch (width)
                {
                    case 2: BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), (ushort)value); break;
                    case 4: BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), (uint)value); break;
                    default: BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), value); break;
                }
                return (b, $"{where}: {width}-byte field at {at} set from {old} to {value}");
            }
        }
    }

    // ------------------------------------------------------------ JSON mutations

    /// <summary>Every value in a JSON tree with its path, parents first.</summary>
    public static List<(string Path, JsonNode? Node, JsonNode? Parent, string? Key, int Index)> Nodes(JsonNode root)
    {
        var list = new List<(string, JsonNode?, JsonNode?, string?, int)>();
        void Walk(JsonNode? node, string path, JsonNode? parent, string? key, int index)
        {
            list.Add((path, node, parent, key, index));
            if (node is JsonObject o)
                foreach (var (k, v) in o.ToList()) Walk(v, $"{path}.{k}", o, k, -1);
            else if (node is JsonArray a)
                for (int i = 0; i < a.Count; i++) Walk(a[i], $"{path}[{i}]", a, null, i);
        }
        Walk(root, "$", null, null, -1);
        return list;
    }

    private static readonly Func<Random, JsonNode?>[] Replacements =
    [
        _ => null, _ => JsonValue.Create(0), _ => JsonValue.Create(-1), _ => JsonValue.Create(1), _ => JsonValue.Create(2),
        _ => JsonValue.Create(int.MaxValue), _ => JsonValue.Create(int.MinValue), _ => JsonValue.Create(long.MaxValue),
        _ => JsonValue.Create(1UL << 40), _ => JsonValue.Create(1e300), _ => JsonValue.Create(-0.5), _ => JsonValue.Create(3.5),
        _ => JsonValue.Create(100_000_000), _ => JsonValue.Create(true), _ => JsonValue.Create(""), _ => JsonValue.Create("NaN"),
        _ => JsonValue.Create("Bogus"), r => JsonValue.Create(new string('x', 1 + r.Next(20_000))), _ => new JsonArray(),
        _ => new JsonObject(), _ => new JsonArray(JsonValue.Create(-1), JsonValue.Create(1UL << 62)),
    ];

    /// <summary>One structural change to a parsed JSON document: a value replaced, removed, renamed, added or nudged.</summary>
    public static string MutateJson(Random r, JsonNode root)
    {
        var nodes = Nodes(root).Skip(1).ToList();
        var (path, node, parent, key, index) = nodes[r.Next(nodes.Count)];
        switch (r.Next(6))
        {
            case 0 when parent is JsonObject o:
                o.Remove(key!);
                return $"{path} removed";
            case 1 when parent is JsonObject o:
            {
                var value = node?.DeepClone();
                o.Remove(key!);
                var renamed = key!.Length > 1 && r.Next(2) == 0 ? key[..^1] : key + "X";
                o[renamed] = value;
                return $"{path} renamed to '{renamed}'";
            }
            case 2 when node is JsonValue v && v.TryGetValue<long>(out var number):
            {
                long nudged = r.Next(3) switch { 0 => number + 1, 1 => number - 1, _ => -number };
                Set(parent!, key, index, JsonValue.Create(nudged));
                return $"{path} changed from {number} to {nudged}";
            }
            case 3 when parent is JsonArray a:
                a.RemoveAt(index);
                return $"{path} removed from its array";
            case 4:
            {
                if (parent is JsonObject o) { o["Unknown" + r.Next(100)] = JsonValue.Create(r.Next()); return $"{path}: unknown property added beside it"; }
                if (parent is JsonArray a) { a.Add(JsonValue.Create(r.Next(1000))); return $"{path}: element appended to its array"; }
                goto default;
            }
            default:
            {
                var replacement = Replacements[r.Next(Replacements.Length)](r);
                var shown = replacement?.ToJsonString() ?? "null";
                Set(parent!, key, index, replacement);
                return $"{path} replaced by {(shown.Length > 40 ? shown[..40] + $"... ({shown.Length} characters)" : shown)}";
            }
        }
    }

    private static void Set(JsonNode parent, string? key, int index, JsonNode? value)
    {
        if (parent is JsonObject o) o[key!] = value;
        else ((JsonArray)parent)[index] = value;
    }

    /// <summary>A text-level change to a JSON document: truncated, a character replaced, removed or duplicated.</summary>
    public static (string Json, string Description) MutateJsonText(Random r, string json)
    {
        int at = r.Next(json.Length);
        const string characters = "{}[]\":,0123456789-.eE \\xnul";
        switch (r.Next(4))
        {
            case 0: return (json[..Math.Max(1, at)], $"JSON text truncated to {Math.Max(1, at)} of {json.Length} characters");
            case 1:
            {
                char c = characters[r.Next(characters.Length)];
                return (json[..at] + c + json[(at + 1)..], $"JSON character {at} '{json[at]}' replaced by '{c}'");
            }
            case 2: return (json.Length > 1 ? json.Remove(at, 1) : json + "}", $"JSON character {at} '{json[at]}' removed");
            default:
            {
                int n = 1 + r.Next(Math.Min(40, json.Length - at));
                return (json[..(at + n)] + json[at..], $"JSON characters {at}..{at + n} duplicated");
            }
        }
    }

    // ------------------------------------------------------------ zips

    /// <summary>The entries of a zip, in order, with their content.</summary>
    public static List<(string Name, byte[] Content)> ReadZip(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.Select(e =>
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, ms.ToArray());
        }).ToList();
    }

    /// <summary>A valid zip (correct CRCs) of the given entries.</summary>
    public static byte[] WriteZip(IEnumerable<(string Name, byte[] Content)> entries)
    {
        var ms = new MemoryStream();
        using (var archive = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, content) in entries)
            {
                using var s = archive.CreateEntry(name, CompressionLevel.Fastest).Open();
                s.Write(content);
            }
        return ms.ToArray();
    }
}
