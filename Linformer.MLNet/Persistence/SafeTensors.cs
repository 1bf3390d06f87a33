using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Persistence;

/// <summary>
/// Reads the safetensors format (an 8-byte little-endian header length, a JSON header with <c>dtype</c>,
/// <c>shape</c> and <c>data_offsets</c> per tensor, then raw little-endian data) into CPU tensors.
/// Every inconsistency is reported as an <see cref="InvalidDataException"/> naming the file and the tensor.
/// </summary>
public static class SafeTensors
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>Reads every tensor of a safetensors file. The caller owns (and disposes) the returned tensors.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not valid safetensors.</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Safetensors file not found: '{path}'.", path);
        var bytes = File.ReadAllBytes(path);
        return Read(bytes, Path.GetFileName(path));
    }

    /// <summary>Reads every tensor of safetensors content; <paramref name="name"/> is used in error messages.</summary>
    public static Dictionary<string, Tensor> Read(byte[] bytes, string name)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 8) throw Bad(name, $"the file has {bytes.Length} bytes; a safetensors file starts with an 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength == 0 || headerLength > MaxHeaderBytes || headerLength > (ulong)(bytes.Length - 8))
            throw Bad(name, $"the header length {headerLength} does not fit the file of {bytes.Length} bytes");
        int dataStart = 8 + (int)headerLength;
        long dataLength = bytes.Length - dataStart;

        // JsonDocument accepts invalid UTF-8 inside strings and fails only when a name is read.
        if (!System.Text.Unicode.Utf8.IsValid(bytes.AsSpan(8, (int)headerLength)))
            throw Bad(name, "the header is not valid UTF-8");
        JsonDocument header;
        try { header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength)); }
        catch (JsonException ex) { throw Bad(name, $"the header is not valid JSON ({ex.Message})"); }

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using (header)
            {
                if (header.RootElement.ValueKind != JsonValueKind.Object) throw Bad(name, "the header is not a JSON object");
                var ranges = new List<(long Begin, long End, string Tensor)>();
                foreach (var entry in header.RootElement.EnumerateObject())
                {
                    if (entry.Name == "__metadata__") continue;
                    if (result.ContainsKey(entry.Name)) throw Bad(name, $"tensor '{entry.Name}' is listed twice in the header");
                    var (dtype, shape, begin, end) = ParseEntry(name, entry);
                    int size = ElementSize(name, entry.Name, dtype);
                    if (begin < 0 || begin > end || end > dataLength)
                        throw Bad(name, $"tensor '{entry.Name}' has data_offsets [{begin}, {end}] outside the data of {dataLength} bytes");
                    // The element count may not overflow: it must match the data_offsets' span, which fits the file.
                    long count = 1;
                    foreach (long d in shape)
                        if (d != 0 && count > (end - begin) / size / d) { count = -1; break; }
                        else count *= d;
                    if (count < 0 || count * size != end - begin)
                        throw Bad(name, $"tensor '{entry.Name}' of dtype {dtype} and shape [{string.Join(", ", shape)}] does not fit its data_offsets span of {end - begin} bytes");
                    ranges.Add((begin, end, entry.Name));
                    var span = new ReadOnlySpan<byte>(bytes, dataStart + (int)begin, (int)(end - begin));
                    result[entry.Name] = Decode(span, dtype, shape);
                }
                // As in the format's specification: the tensors tile the data exactly, without gaps, overlaps or extra bytes.
                long covered = 0;
                foreach (var (begin, end, tensor) in ranges.OrderBy(r => r.Begin).ThenBy(r => r.End))
                {
                    if (begin != covered)
                        throw Bad(name, begin > covered
                            ? $"the data has {begin - covered} unused bytes before tensor '{tensor}' (offset {covered})"
                            : $"tensor '{tensor}' (data_offsets [{begin}, {end}]) overlaps the tensor before it");
                    covered = end;
                }
                if (covered != dataLength)
                    throw Bad(name, $"the tensors cover {covered} of the {dataLength} data bytes");
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    private static (string dtype, long[] shape, long begin, long end) ParseEntry(string file, JsonProperty entry)
    {
        var v = entry.Value;
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw Bad(file, $"tensor '{entry.Name}' needs 'dtype', 'shape' and a two-element 'data_offsets'");
        try
        {
            var shape = shapeEl.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (shape.Any(s => s < 0)) throw Bad(file, $"tensor '{entry.Name}' has a negative dimension");
            return (dtypeEl.GetString()!, shape, offEl[0].GetInt64(), offEl[1].GetInt64());
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException)
        {
            throw Bad(file, $"tensor '{entry.Name}' has a non-integer shape or data_offsets");
        }
    }

    private static int ElementSize(string file, string tensor, string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => throw Bad(file, $"tensor '{tensor}' has unsupported dtype '{dtype}' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)"),
    };

    private static Tensor Decode(ReadOnlySpan<byte> data, string dtype, long[] shape)
    {
        int count = (int)shape.Aggregate(1L, (a, b) => a * b);
        switch (dtype)
        {
            case "F32":
            {
                var a = new float[count];
                for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadSingleLittleEndian(data.Slice(4 * i));
                return tensor(a, shape, float32);
            }
            case "F64":
            {
                var a = new double[count];
                for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadDoubleLittleEndian(data.Slice(8 * i));
                return tensor(a, shape, float64);
            }
            case "F16":
            {
                var a = new float[count];
                for (int i = 0; i < count; i++) a[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(data.Slice(2 * i)));
                return tensor(a, shape, float32);
            }
            case "BF16":
            {
                var a = new float[count];
                for (int i = 0; i < count; i++) a[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data.Slice(2 * i)) << 16);
                return tensor(a, shape, float32);
            }
            case "I64" or "U64":
            {
                var a = new long[count];
                for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadInt64LittleEndian(data.Slice(8 * i));
                return tensor(a, shape, int64);
            }
            case "I32" or "U32":
            {
                var a = new int[count];
                for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadInt32LittleEndian(data.Slice(4 * i));
                return tensor(a, shape, int32);
            }
            case "I16" or "U16":
            {
                var a = new short[count];
                for (int i = 0; i < count; i++) a[i] = BinaryPrimitives.ReadInt16LittleEndian(data.Slice(2 * i));
                return tensor(a, shape, int16);
            }
            case "I8":
            {
                var a = new sbyte[count];
                for (int i = 0; i < count; i++) a[i] = (sbyte)data[i];
                return tensor(a, shape, int8);
            }
            case "U8":
                return tensor(data.ToArray(), shape, uint8);
            case "BOOL":
            {
                var a = new bool[count];
                for (int i = 0; i < count; i++) a[i] = data[i] != 0;
                return tensor(a, shape, @bool);
            }
            default:
                throw new InvalidDataException($"Unsupported dtype '{dtype}'.");
        }
    }

    private static InvalidDataException Bad(string file, string what) => new($"Invalid safetensors file '{file}': {what}.");
}
