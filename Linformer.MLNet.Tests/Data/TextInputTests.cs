using System.Globalization;
using System.IO.Compression;
using System.Text;
using Linformer.MLNet.Data;
using Linformer.MLNet.Model;
using Linformer.MLNet.Tests.Examples;
using Linformer.MLNet.Tests.Hardening;
using Linformer.MLNet.Tests.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Tokenizers;

namespace Linformer.MLNet.Tests.Data;

/// <summary>
/// A Text input column (docs/text-input.md): the transform tokenises each row with the chosen tokenizer, then reads the
/// ids as a variable-length token column; the tokenizer's definition travels inside the model zip.
/// </summary>
[TestClass]
public sealed class TextInputTests
{
    public TestContext TestContext { get; set; } = null!;

    public sealed class Mail
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    private static readonly string[] Texts =
    [
        "hello world, free money now!",
        "the team meeting moved to monday",
        "",
        "win a prize: click here, hello hello hello world world world free free free money money money now now now",
        "lunch notes for the report",
        "Héllo wörld ✓ 12345",
    ];

    private static IEnumerable<Mail> Mails(int count) => Enumerable.Range(0, count).Select(i => new Mail { Text = Texts[i % Texts.Length], Label = i % 2 == 0 });

    private const int N = 12;

    private static LinformerEstimator.Options Options(LinformerTokenizer? tokenizer, int epochs = 1) => new()
    {
        InputColumnName = nameof(Mail.Text), OutputColumnName = "Features", LabelColumnName = nameof(Mail.Label), ScoreColumnName = "Score",
        Tokenizer = tokenizer, SequenceLength = N,
        // A tiny width keeps the o200k embedding (200022 rows) small.
        ModelWidth = 4, Heads = 1, Depth = 1, ProjectedLength = 4, FeedForwardSize = 8, Dropout = 0, FeedForwardDropout = 0,
        Epochs = epochs, BatchSize = 4,
    };

    /// <summary>Tiny tokenizer files written by hand: a BPE vocab.json + merges.txt, a WordPiece vocab.txt, a SentencePiece BPE .model.</summary>
    private sealed class TokenizerFiles : IDisposable
    {
        public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"linformer-tokenizers-{Guid.NewGuid():N}");
        public string BpeVocabulary => Path.Combine(Folder, "vocab.json");
        public string BpeMerges => Path.Combine(Folder, "merges.txt");
        public string WordPieceVocabulary => Path.Combine(Folder, "vocab.txt");
        public string SentencePieceModel => Path.Combine(Folder, "tiny.model");

        private static readonly string[] Letters = "abcdefghijklmnopqrstuvwxyz".Select(c => c.ToString()).ToArray();

        public TokenizerFiles()
        {
            Directory.CreateDirectory(Folder);
            var bpe = Letters.Concat(["he", "ll", "hell", "hello", "wo", "wor", "worl", "world", "fr", "fre", "free"]).ToList();
            File.WriteAllText(BpeVocabulary, "{" + string.Join(",", bpe.Select((t, i) => $"\"{t}\":{i}")) + "}");
            File.WriteAllText(BpeMerges, "#version: 0.2\nh e\nl l\nhe ll\nhell o\nw o\nwo r\nwor l\nworl d\nf r\nfr e\nfre e\n");
            File.WriteAllLines(WordPieceVocabulary,
                new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "free", "money", "the", ",", "!" }
                    .Concat(Letters).Concat(Letters.Select(l => "##" + l)));
            File.WriteAllBytes(SentencePieceModel, SentencePieceBpeModel(
                new[] { ("<unk>", 0f, 2), ("<s>", 0f, 3), ("</s>", 0f, 3), ("▁", -1f, 1), ("▁hello", -2f, 1), ("▁world", -3f, 1) }
                    .Concat(Letters.Select((l, i) => (l, -10f - i, 1))).ToArray()));
        }

        public void Dispose()
        {
            if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
        }

        // sentencepiece_model.proto: ModelProto { repeated SentencePiece pieces = 1 { piece = 1, score = 2, type = 3 };
        // TrainerSpec trainer_spec = 2 { model_type = 3 (BPE = 2), vocab_size = 4, unk_id = 40, bos_id = 41, eos_id = 42,
        // pad_id = 43 }; NormalizerSpec normalizer_spec = 3 { name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4,
        // escape_whitespaces = 5 } }.
        private static byte[] SentencePieceBpeModel((string Piece, float Score, int Type)[] pieces)
        {
            static void Varint(Stream s, ulong v) { while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; } s.WriteByte((byte)v); }
            static void Tag(Stream s, int field, int wire) => Varint(s, (ulong)((field << 3) | wire));
            static void Bytes(Stream s, int field, byte[] b) { Tag(s, field, 2); Varint(s, (ulong)b.Length); s.Write(b); }
            static void Int(Stream s, int field, long v) { Tag(s, field, 0); Varint(s, unchecked((ulong)v)); }
            var model = new MemoryStream();
            foreach (var (piece, score, type) in pieces)
            {
                var p = new MemoryStream();
                Bytes(p, 1, Encoding.UTF8.GetBytes(piece));
                Tag(p, 2, 5);
                p.Write(BitConverter.GetBytes(score));
                Int(p, 3, type);
                Bytes(model, 1, p.ToArray());
            }
            var trainer = new MemoryStream();
            Int(trainer, 3, 2); Int(trainer, 4, pieces.Length); Int(trainer, 40, 0); Int(trainer, 41, 1); Int(trainer, 42, 2); Int(trainer, 43, -1);
            Bytes(model, 2, trainer.ToArray());
            var normalizer = new MemoryStream();
            Bytes(normalizer, 1, Encoding.UTF8.GetBytes("identity")); Int(normalizer, 3, 1); Int(normalizer, 4, 1); Int(normalizer, 5, 1);
            Bytes(model, 3, normalizer.ToArray());
            return model.ToArray();
        }

        /// <summary>Each kind of tokenizer: the definition, and the same tokenizer built directly with Microsoft.ML.Tokenizers.</summary>
        public IEnumerable<(string Name, LinformerTokenizer Definition, Func<Tokenizer> Direct)> All()
        {
            yield return ("gpt2", LinformerTokenizer.Gpt2(), () => TiktokenTokenizer.CreateForModel("gpt2"));
            yield return ("r50k_base", LinformerTokenizer.R50kBase(), () => TiktokenTokenizer.CreateForEncoding("r50k_base"));
            yield return ("cl100k_base", LinformerTokenizer.Cl100kBase(), () => TiktokenTokenizer.CreateForEncoding("cl100k_base"));
            yield return ("o200k_base", LinformerTokenizer.O200kBase(), () => TiktokenTokenizer.CreateForEncoding("o200k_base"));
            yield return ("bpe", LinformerTokenizer.FromBpeFiles(BpeVocabulary, BpeMerges), () => BpeTokenizer.Create(BpeVocabulary, BpeMerges));
            yield return ("wordpiece", LinformerTokenizer.FromWordPieceVocabulary(WordPieceVocabulary),
                () => BertTokenizer.Create(WordPieceVocabulary, new BertOptions { LowerCaseBeforeTokenization = true }));
            yield return ("sentencepiece", LinformerTokenizer.FromSentencePieceModel(SentencePieceModel),
                () => SentencePieceTokenizer.Create(File.OpenRead(SentencePieceModel)));
        }
    }

    [TestMethod]
    public void TheTokensTheTransformReadsAreTheTokenizersOwnIdsThenPadding()
    {
        using var files = new TokenizerFiles();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Mails(Texts.Length));
        foreach (var (name, definition, direct) in files.All())
        {
            var tokenizer = direct();
            using var model = ml.Transforms.Linformer(Options(definition, epochs: 0)).Fit(data);
            var layout = TokenLayout.Of(model.Spec);
            Assert.AreEqual(definition.VocabularySize + TokenLayout.ReservedCount, layout.EmbeddingRows, $"{name}: the embedding has the tokenizer's ids and the reserved ones");
            using var cursor = data.GetRowCursor(data.Schema);
            var reader = new SequenceReader(model.Binding, cursor, layout, null);
            long[] ids = new long[N];
            bool[] mask = new bool[N];
            int row = 0, nonEmpty = 0;
            while (cursor.MoveNext())
            {
                reader.Read(Span<float>.Empty, ids, mask);
                var own = tokenizer.EncodeToIds(Texts[row]).Select(i => (long)i).ToList();
                CollectionAssert.AreEqual(own, definition.EncodeToIds(Texts[row]).Select(i => (long)i).ToList(), $"{name}: LinformerTokenizer.EncodeToIds, row {row}");
                if (own.Count == 0)
                {
                    // A text without tokens reads as the reserved unknown token, so it still encodes.
                    CollectionAssert.AreEqual(new long[] { layout.UnknownId!.Value }, ids[..1], $"{name}: empty row {row}");
                    own.Add(layout.UnknownId!.Value);
                }
                else nonEmpty++;
                int kept = Math.Min(own.Count, N);
                var expected = own.Take(kept).Concat(Enumerable.Repeat((long)layout.PaddingId!.Value, N - kept)).ToArray();
                CollectionAssert.AreEqual(expected, ids, $"{name}: ids of row {row} ('{Texts[row]}'): the tokenizer's first {N}, then padding");
                CollectionAssert.AreEqual(Enumerable.Range(0, N).Select(i => i < kept).ToArray(), mask, $"{name}: mask of row {row}");
                row++;
            }
            Assert.IsGreaterThanOrEqualTo(4, nonEmpty, $"{name}: the probe texts give tokens");
            TestContext.WriteLine($"{name}: {definition.Name}, {definition.VocabularySize} ids; row 0 → {string.Join(",", tokenizer.EncodeToIds(Texts[0]))}");
        }
    }

    [TestMethod]
    public void TheBuiltInVocabularySizesEndWithTheEncodingsLastSpecialToken()
    {
        foreach (var (definition, encoding) in new[] { (LinformerTokenizer.Gpt2(), "gpt2"), (LinformerTokenizer.R50kBase(), "r50k_base"),
                     (LinformerTokenizer.Cl100kBase(), "cl100k_base"), (LinformerTokenizer.O200kBase(), "o200k_base") })
        {
            var tiktoken = encoding == "gpt2" ? TiktokenTokenizer.CreateForModel("gpt2") : TiktokenTokenizer.CreateForEncoding(encoding);
            Assert.AreEqual(tiktoken.SpecialTokens!.Values.Max() + 1, definition.VocabularySize, encoding);
            Assert.AreEqual(encoding, definition.Name);
        }
    }

    [TestMethod]
    public void EachTokenizerSavesInsideTheModelAndLoadsInANewProcessBitIdentical()
    {
        using var files = new TokenizerFiles();
        var ml = new MLContext(seed: 2);
        var train = ml.Data.LoadFromEnumerable(Mails(8));
        var probe = ml.Data.LoadFromEnumerable(Texts.Select(t => new Mail { Text = t }).Append(new Mail { Text = "zebra quantum ∑ never seen" }));
        var folder = Path.Combine(Path.GetTempPath(), $"linformer-text-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            string dataPath = Path.Combine(folder, "probe.idv"), jobsPath = Path.Combine(folder, "jobs.txt");
            using (var stream = File.Create(dataPath)) ml.Data.SaveAsBinary(probe, stream);
            string[] columns = ["Features", "Score"];
            var expected = new List<(string Name, Dictionary<string, List<float[]>> Values)>();
            var jobs = new StringBuilder();
            foreach (var (name, definition, _) in files.All())
            {
                using var model = ml.Transforms.Linformer(Options(definition)).Fit(train);
                var scored = model.Transform(probe);
                expected.Add((name, columns.ToDictionary(c => c, c => scored.Schema[c].Type is VectorDataViewType
                    ? scored.GetColumn<float[]>(c).ToList() : scored.GetColumn<float>(c).Select(v => new[] { v }).ToList())));
                var modelPath = Path.Combine(folder, $"{name}.zip");
                ml.Model.Save(model, train.Schema, modelPath);
                var (written, readable) = ModelFormatCompatibilityTests.Versions(modelPath);
                Assert.AreEqual(0x00010005u, written, $"{name}: version written");
                Assert.AreEqual(0x00010005u, readable, $"{name}: version readable: an older reader has no tokenizer");
                using (var archive = ZipFile.OpenRead(modelPath))
                {
                    Assert.AreEqual(1, archive.Entries.Count(e => e.Name == "LinformerTokenizer"), $"{name}: the tokenizer entry");
                }
                jobs.Append(CultureInfo.InvariantCulture, $"{modelPath}|{dataPath}|{string.Join(",", columns)}\n");
            }
            File.WriteAllText(jobsPath, jobs.ToString());
            files.Dispose();   // the loaded models must need none of the files they were made from

            var host = Path.Combine(TestPaths.RepositoryRoot, "Linformer.MLNet.Tests", "LinformerModelHost", "bin",
                TestPaths.Configuration, "net10.0", "LinformerModelHost.dll");
            Assert.IsTrue(File.Exists(host), $"{host} was not built");
            var result = ProgramRunner.RunDotnet(host, new[] { jobsPath }, TimeSpan.FromMinutes(3));
            Assert.AreEqual(0, result.ExitCode, result.Error);
            var jobOutputs = result.Output.Split("job ", StringSplitOptions.RemoveEmptyEntries);
            Assert.HasCount(expected.Count, jobOutputs, result.Output);
            for (int job = 0; job < expected.Count; job++)
            {
                var lines = jobOutputs[job].Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
                var (name, values) = expected[job];
                foreach (var column in columns)
                {
                    var loaded = lines.Where(l => l.StartsWith($"value {column} ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
                    Assert.HasCount(values[column].Count, loaded, $"{name}: rows of '{column}' in the new process");
                    for (int row = 0; row < loaded.Count; row++)
                    {
                        var floats = loaded[row].Skip(3).Select(h => BitConverter.Int32BitsToSingle(int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();
                        CollectionAssert.AreEqual(values[column][row], floats, $"{name}: '{column}' of probe row {row}: original vs loaded in a new process");
                    }
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void ATextColumnWithoutATokenizerUsesGpt2()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Mails(4));
        using var model = ml.Transforms.Linformer("Features", nameof(Mail.Text), sequenceLength: N, modelWidth: 8, heads: 2, depth: 1, projectedLength: 4, epochs: 0).Fit(data);

        Assert.AreEqual("gpt2", model.Binding.Tokenizer!.Name);
        Assert.AreEqual(50257 + TokenLayout.ReservedCount, model.Spec.Encoder.VocabularySize);
        Assert.HasCount(4, Tiny.Features(model, data));
    }

    [TestMethod]
    public void ATextColumnWithoutSequenceLengthIsRefusedNamingIt()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(Mails(4));
        var estimator = ml.Transforms.Linformer("Features", nameof(Mail.Text));

        var atSchema = Assert.ThrowsExactly<ArgumentException>(() => estimator.GetOutputSchema(LinformerEstimator.ShapeOf(data.Schema)));
        var atFit = Assert.ThrowsExactly<ArgumentException>(() => estimator.Fit(data));

        foreach (var ex in new[] { atSchema, atFit })
        {
            Assert.AreEqual("SequenceLength", ex.ParamName);
            StringAssert.Contains(ex.Message, "SequenceLength must be set for the Text input column 'Text'");
        }
    }

    [TestMethod]
    public void ATokenizerForANonTextColumnAndAConflictingVocabularySizeAreRefused()
    {
        var ml = new MLContext();
        var ids = ml.Data.LoadFromEnumerable(new[] { new IntRow { Tokens = [1, 2, 3, 4] } });
        var tokens = Options(LinformerTokenizer.Gpt2(), epochs: 0);
        tokens.InputColumnName = nameof(IntRow.Tokens);
        tokens.LabelColumnName = null;
        tokens.ScoreColumnName = null;
        tokens.SequenceLength = 0;
        tokens.VocabularySize = 10;
        var wrongColumn = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(tokens).Fit(ids));
        Assert.AreEqual("Tokenizer", wrongColumn.ParamName);
        StringAssert.Contains(wrongColumn.Message, "Tokenizer (gpt2) applies to a Text input column; column 'Tokens' is Vector<Int32, 4>");

        var conflicting = Options(LinformerTokenizer.Gpt2(), epochs: 0);
        conflicting.VocabularySize = 50000;
        var vocabulary = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Linformer(conflicting).Fit(ml.Data.LoadFromEnumerable(Mails(4))));
        Assert.AreEqual("VocabularySize", vocabulary.ParamName);
        StringAssert.Contains(vocabulary.Message, "VocabularySize (50000) differs from the 50257 ids of the tokenizer gpt2 of the Text column 'Text'");
    }

    private sealed class IntRow
    {
        [VectorType(4)] public int[] Tokens { get; set; } = [];
    }

    [TestMethod]
    public void TokenizerFilesThatDoNotParseAreRefusedNamingTheFileAndTheReason()
    {
        using var files = new TokenizerFiles();
        File.WriteAllText(files.BpeVocabulary, "{not json");
        var bpe = Assert.ThrowsExactly<InvalidDataException>(() => LinformerTokenizer.FromBpeFiles(files.BpeVocabulary, files.BpeMerges));
        StringAssert.Contains(bpe.Message, "The Bpe tokenizer files 'vocab.json' and 'merges.txt' could not be read");

        File.WriteAllBytes(files.SentencePieceModel, [1, 2, 3, 4, 5]);
        var sentencePiece = Assert.ThrowsExactly<InvalidDataException>(() => LinformerTokenizer.FromSentencePieceModel(files.SentencePieceModel));
        StringAssert.Contains(sentencePiece.Message, "The SentencePiece tokenizer files 'tiny.model' could not be read");

        File.WriteAllLines(files.WordPieceVocabulary, ["hello", "world"]);
        var wordPiece = Assert.ThrowsExactly<InvalidDataException>(() => LinformerTokenizer.FromWordPieceVocabulary(files.WordPieceVocabulary));
        StringAssert.Contains(wordPiece.Message, "The WordPiece tokenizer files 'vocab.txt' could not be read: The special token '[UNK]' is not in the vocabulary");

        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => LinformerTokenizer.FromSentencePieceModel(Path.Combine(files.Folder, "none.model")));
        StringAssert.Contains(missing.Message, "modelPath: file not found");
        foreach (var ex in new Exception[] { bpe, sentencePiece, wordPiece }) TestContext.WriteLine(ex.Message);
    }

    [TestMethod]
    public void ADamagedOrMissingTokenizerEntryIsRefusedClearly()
    {
        using var files = new TokenizerFiles();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Mails(4));
        using var model = ml.Transforms.Linformer(Options(LinformerTokenizer.FromBpeFiles(files.BpeVocabulary, files.BpeMerges), epochs: 0)).Fit(data);
        var path = Tiny.TempPath(".zip");
        try
        {
            var cases = new (string What, Action<ZipArchive> Damage, string Expected)[]
            {
                ("a flipped byte in a file", zip => Rewrite(zip, bytes => { bytes[40] ^= 0x20; return bytes; }),
                    "The Linformer model's tokenizer (entry 'LinformerTokenizer') is corrupt: its SHA-256 is"),
                ("cut short", zip => Rewrite(zip, bytes => bytes[..20]), "The Linformer model's tokenizer (entry 'LinformerTokenizer') is corrupt: it holds 20 bytes"),
                ("removed", zip => zip.Entries.Single(e => e.Name == "LinformerTokenizer").Delete(),
                    "The model has no 'LinformerTokenizer' entry: the tokenizer of its Text input column 'Text' is missing."),
            };
            foreach (var (what, damage, expected) in cases)
            {
                ml.Model.Save(model, data.Schema, path);
                using (var zip = ZipFile.Open(path, ZipArchiveMode.Update)) damage(zip);

                var ex = LoadAndCatch(path, what);

                var innermost = Tiny.Chain(ex).Last();
                Assert.IsInstanceOfType<InvalidDataException>(innermost, $"{what}: {Tiny.Messages(ex)}");
                StringAssert.Contains(innermost.Message, expected, what);
                TestContext.WriteLine($"{what}: {innermost.Message}");
            }
        }
        finally { File.Delete(path); }
    }

    private static Exception LoadAndCatch(string path, string what)
    {
        try { new MLContext().Model.Load(path, out _); }
        catch (Exception ex) { return ex; }
        Assert.Fail($"Loading the model with its tokenizer entry {what} should have failed.");
        throw new InvalidOperationException("unreachable");
    }

    private static void Rewrite(ZipArchive zip, Func<byte[], byte[]> change)
    {
        var entry = zip.Entries.Single(e => e.Name == "LinformerTokenizer");
        byte[] content;
        using (var stream = entry.Open())
        using (var buffer = new MemoryStream())
        {
            stream.CopyTo(buffer);
            content = buffer.ToArray();
        }
        var name = entry.FullName;
        entry.Delete();
        using var replaced = zip.CreateEntry(name).Open();
        replaced.Write(change(content));
    }
}
