using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

/// <summary>A small safetensors writer (test-only) and an independent reader for the dtypes the cases use.</summary>
internal static class SeedSafeTensors
{
    /// <summary>Writes tensors in the given order: 8-byte little-endian header length, JSON header padded with spaces to 8 bytes, raw little-endian data.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var blobs = new List<(string Name, string Dtype, long[] Shape, byte[] Data)>();
        foreach (var (name, tensor) in tensors) blobs.Add((name, DtypeName(tensor.dtype), tensor.shape, Bytes(tensor)));

        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (var (name, dtype, shape, data) in blobs)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long s in shape) json.WriteNumberValue(s);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += data.Length;
            }
            json.WriteEndObject();
        }
        var header = headerStream.ToArray().ToList();
        while (header.Count % 8 != 0) header.Add((byte)' ');

        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Count);
        file.Write(length);
        file.Write(header.ToArray());
        foreach (var blob in blobs) file.Write(blob.Data);
    }

    /// <summary>Reads F32, F64, I64, I32 and BOOL tensors; independent of the library's reader.</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        int dataStart = 8 + headerLength;
        using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            string dtype = entry.Value.GetProperty("dtype").GetString()!;
            long[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets");
            int begin = dataStart + offsets[0].GetInt32(), end = dataStart + offsets[1].GetInt32();
            var span = bytes.AsSpan(begin, end - begin);
            result[entry.Name] = dtype switch
            {
                "F32" => tensor(Enumerable.Range(0, span.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(begin + 4 * i))).ToArray(), shape, float32),
                "F64" => tensor(Enumerable.Range(0, span.Length / 8).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(begin + 8 * i))).ToArray(), shape, float64),
                "I64" => tensor(Enumerable.Range(0, span.Length / 8).Select(i => BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(begin + 8 * i))).ToArray(), shape, int64),
                "I32" => tensor(Enumerable.Range(0, span.Length / 4).Select(i => BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(begin + 4 * i))).ToArray(), shape, int32),
                "BOOL" => tensor(span.ToArray().Select(b => b != 0).ToArray(), shape, @bool),
                _ => throw new InvalidDataException($"{Path.GetFileName(path)}: dtype {dtype} of '{entry.Name}' is not read by the test reader."),
            };
        }
        return result;
    }

    private static string DtypeName(ScalarType type) => type switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"The test writer does not write {type}."),
    };

    private static byte[] Bytes(Tensor t)
    {
        using var c = t.detach().cpu().contiguous();
        long count = c.numel();
        if (count == 0) { _ = DtypeName(c.dtype); return []; }   // TorchSharp's accessor cannot copy out an empty tensor
        switch (c.dtype)
        {
            case ScalarType.Float32:
            {
                var values = c.data<float>().ToArray();
                var bytes = new byte[4 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
                return bytes;
            }
            case ScalarType.Float64:
            {
                var values = c.data<double>().ToArray();
                var bytes = new byte[8 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(8 * i), values[i]);
                return bytes;
            }
            case ScalarType.Int64:
            {
                var values = c.data<long>().ToArray();
                var bytes = new byte[8 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8 * i), values[i]);
                return bytes;
            }
            case ScalarType.Int32:
            {
                var values = c.data<int>().ToArray();
                var bytes = new byte[4 * count];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), values[i]);
                return bytes;
            }
            case ScalarType.Bool:
                return c.data<bool>().ToArray().Select(b => b ? (byte)1 : (byte)0).ToArray();
            default:
                throw new NotSupportedException($"The test writer does not write {c.dtype}.");
        }
    }
}
