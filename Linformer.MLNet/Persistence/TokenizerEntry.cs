using System.Globalization;
using System.Security.Cryptography;
using Linformer.MLNet.Interop;
using Linformer.MLNet.Model;
using Microsoft.ML;

namespace Linformer.MLNet.Persistence;

/// <summary>
/// The zip entry <c>LinformerTokenizer</c> of a model whose input is a Text column (format 1.5, docs/persistence.md):
/// the tokenizer's definition, so that a loaded model tokenises as the saved one with no file and no registration.
/// Layout (BinaryWriter): format number 1, the kind's name, the lower-case flag, the number of files, then per file its
/// name, byte count and bytes; last a SHA-256 of everything before it (zip readers do not check an entry's CRC).
/// </summary>
internal static class TokenizerEntry
{
    public const string Name = "LinformerTokenizer";
    private const int Format = 1;
    // Larger than any tokenizer file in use (o200k's data is about 4 MiB) and small enough to allocate without harm.
    private const int MaxBytes = 256 * 1024 * 1024;

    public static void Save(ModelSaveContext ctx, LinformerTokenizer tokenizer)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Format);
            w.Write(tokenizer.Kind.ToString());
            w.Write(tokenizer.LowerCase);
            w.Write(tokenizer.Files.Count);
            foreach (var (name, bytes) in tokenizer.Files)
            {
                w.Write(name);
                w.Write(bytes.Length);
                w.Write(bytes);
            }
        }
        var body = buffer.ToArray();
        var hash = SHA256.HashData(body);
        ModelContextBridge.SaveBinaryStream(ctx, Name, writer =>
        {
            writer.Write(body);
            writer.Write(hash);
        });
    }

    /// <summary>
    /// Reads the tokenizer of the Text column <paramref name="column"/> and checks that it gives the model's
    /// <paramref name="embeddingRows"/> (its ids, plus the reserved ones when <paramref name="specialTokens"/>).
    /// </summary>
    /// <exception cref="InvalidDataException">The entry is missing, damaged, or its tokenizer does not fit the model.</exception>
    public static LinformerTokenizer Load(object ctx, string column, int embeddingRows, bool specialTokens)
    {
        byte[]? entry = null;
        bool found = ModelContextBridge.TryLoadBinaryStream(ctx, Name, reader =>
        {
            using var copy = new MemoryStream();
            reader.BaseStream.CopyTo(copy);
            entry = copy.ToArray();
        });
        if (!found || entry is null)
            throw new InvalidDataException($"The model has no '{Name}' entry: the tokenizer of its Text input column '{column}' is missing.");
        if (entry.Length < SHA256.HashSizeInBytes + sizeof(int))
            throw Corrupt($"it holds {entry.Length} bytes, too few for a tokenizer and its SHA-256");
        var body = entry.AsSpan(0, entry.Length - SHA256.HashSizeInBytes);
        var stored = entry.AsSpan(entry.Length - SHA256.HashSizeInBytes);
        var actual = SHA256.HashData(body);
        if (!stored.SequenceEqual(actual))
            throw Corrupt($"its SHA-256 is {Convert.ToHexString(actual)}, the stored one {Convert.ToHexString(stored)}");

        LinformerTokenizer.DefinitionKind kind;
        bool lowerCase;
        var files = new List<(string, byte[])>();
        try
        {
            using var r = new BinaryReader(new MemoryStream(body.ToArray(), writable: false), System.Text.Encoding.UTF8);
            int format = r.ReadInt32();
            if (format != Format) throw Corrupt(string.Create(CultureInfo.InvariantCulture, $"its format is {format}, this library reads {Format}"));
            string kindName = r.ReadString();
            if (!Enum.TryParse(kindName, ignoreCase: false, out kind) || !Enum.IsDefined(kind))
                throw Corrupt($"its tokenizer kind '{kindName}' is unknown");
            lowerCase = r.ReadBoolean();
            int count = r.ReadInt32();
            if (count is < 0 or > 16) throw Corrupt(string.Create(CultureInfo.InvariantCulture, $"it declares {count} files"));
            for (int i = 0; i < count; i++)
            {
                string name = r.ReadString();
                int length = r.ReadInt32();
                if (length < 0 || length > MaxBytes || length > r.BaseStream.Length - r.BaseStream.Position)
                    throw Corrupt(string.Create(CultureInfo.InvariantCulture, $"file '{name}' declares {length} bytes, {r.BaseStream.Length - r.BaseStream.Position} remain"));
                files.Add((name, r.ReadBytes(length)));
            }
            if (r.BaseStream.Position != r.BaseStream.Length)
                throw Corrupt(string.Create(CultureInfo.InvariantCulture, $"{r.BaseStream.Length - r.BaseStream.Position} bytes follow the last file"));
        }
        catch (EndOfStreamException) { throw Corrupt("it ends early"); }

        LinformerTokenizer tokenizer;
        try { tokenizer = LinformerTokenizer.FromFiles(kind, lowerCase, files); }
        catch (InvalidDataException ex) { throw new InvalidDataException($"The Linformer model's tokenizer (entry '{Name}') cannot be rebuilt: {ex.Message}", ex); }
        int expected = tokenizer.VocabularySize + (specialTokens ? TokenLayout.ReservedCount : 0);
        if (expected != embeddingRows)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"The Linformer model's tokenizer (entry '{Name}', {tokenizer.Name}) has {tokenizer.VocabularySize} ids, which do not fit the model's {embeddingRows} token embedding rows."));
        return tokenizer;
    }

    private static InvalidDataException Corrupt(string why) => new($"The Linformer model's tokenizer (entry '{Name}') is corrupt: {why}.");
}
