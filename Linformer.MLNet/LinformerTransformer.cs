using Linformer.MLNet.Data;
using Linformer.MLNet.Interop;
using Linformer.MLNet.Persistence;
using Linformer.MLNet.Training;
using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using System.Globalization;
using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;

[assembly: MLNetLoadableModel(typeof(Linformer.MLNet.LinformerTransformer), "Linformer encoder", Linformer.MLNet.LinformerTransformer.LoaderSignature)]

namespace Linformer.MLNet;

/// <summary>
/// A fitted Linformer encoder: encodes the sequence column into <c>Vector&lt;Single&gt;</c> features (and optional
/// scores) lazily, in batches, on CPU or CUDA. Saves and loads with <c>mlContext.Model.Save</c> / <c>Load</c>
/// (weights inside the zip; no registration call needed).
/// </summary>
/// <remarks>
/// <para><b>Threads.</b> One transformer may serve any number of threads at once: cursors over its
/// <see cref="Transform"/> output and prediction engines, each used by one thread, as ML.NET requires of cursors and
/// engines. The forward pass only reads the weights (eval mode, no gradients; TorchSharp keeps gradient mode and
/// dispose scopes per thread), and every cursor and engine row has its own buffers, so on CPU each thread's results
/// are bit-identical to a single-threaded run of the same kind (cursors batch <c>BatchSize</c> rows, engines one row,
/// and the two agree to rounding). Do not change the network (<see cref="Encoder"/>: <c>train()</c>, weights) while it
/// serves.</para>
/// <para><b>Ownership and disposal.</b> The transformer owns the network's native memory: dispose it, or the
/// <c>TransformerChain</c> that holds it (disposing a chain disposes its transformers), when done. Dispose waits
/// for batches being encoded on other threads, then frees the weights. Afterwards <see cref="Transform"/>,
/// <see cref="GetOutputSchema"/>, <see cref="GetRowToRowMapper"/> (so <c>CreatePredictionEngine</c>), saving, and
/// <c>MoveNext</c> of cursors opened earlier throw <see cref="ObjectDisposedException"/>. A
/// <c>PredictionEngine</c> made with ML.NET's defaults owns the transformer and disposes it when the engine is
/// disposed; when several engines share one transformer, create them with
/// <c>new PredictionEngineOptions { OwnsTransformer = false }</c> and dispose the transformer yourself.</para>
/// </remarks>
public sealed partial class LinformerTransformer : ITransformer, IDisposable
{
    internal const string LoaderSignature = "LinformerTransformer";
    private const string WeightsEntry = "LinformerWeights";
    // Written: 1.1 settings JSON + network state dict; 1.2 + SHA-256 of the state dict; 1.3 + SHA-256 of the settings,
    // the head's columns; 1.4 variable-length input, reserved special tokens; 1.5 a Text input column's tokenizer (its
    // own entry, TokenizerEntry) and long inputs as windows. Every model is written as 1.5 and stamped with the oldest
    // reader that reads it correctly.
    private static ModelVersionInfo VersionReadableBy(uint versionReadable) => new(
        modelSignature: "LINFORMR",
        versionWritten: 0x00010005,
        versionReadable: versionReadable,
        versionWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(LinformerTransformer).Assembly.GetName().Name!);

    // A 1.1 reader reads models without head columns or input layout (it ignores the trailing hashes).
    private static readonly ModelVersionInfo Version = VersionReadableBy(0x00010001);

    // A model with head columns needs a 1.3 reader: an older one would silently drop Probability and PredictedLabel.
    private static readonly ModelVersionInfo VersionWithHead = VersionReadableBy(0x00010003);

    // A model that reads variable-length rows or reserves special tokens needs a 1.4 reader: an older one would ignore
    // those settings and refuse variable-length columns, or read the last embedding rows as ordinary tokens.
    private static readonly ModelVersionInfo VersionWithInputLayout = VersionReadableBy(0x00010004);

    // Format 1.5: a model that tokenises a Text column or encodes long rows as windows (LongInputs = Windows) needs a
    // 1.5 reader: an older one would find no tokenizer for the column, or ignore the setting and cut the rows instead.
    private static readonly ModelVersionInfo VersionWithTokenizerOrWindows = VersionReadableBy(0x00010005);

    private readonly IHostEnvironment env;
    private readonly LinformerNetwork network;
    private readonly Device device;
    private readonly TransformerSettings settings;
    private readonly BatchEncoder encoder;

    internal LinformerTransformer(IHostEnvironment env, LinformerNetwork network, Device device, TransformerSettings settings)
    {
        this.env = env;
        this.network = network;
        this.device = device;
        this.settings = settings;
        encoder = new BatchEncoder(typeof(LinformerTransformer), network, device, settings.OutputKind, settings.HeadOutput(network.Spec.Head));
    }

    internal NetworkSpec Spec => network.Spec;
    internal InputBinding Binding => settings.Binding;
    internal TransformerSettings Settings => settings;
    internal LinformerNetwork Network { get { ThrowIfDisposed(); return network; } }

    /// <summary>The output column's name.</summary>
    public string OutputColumnName => settings.OutputColumn;

    /// <summary>The input column's name.</summary>
    public string InputColumnName => settings.Binding.Column;

    /// <summary>The head's score column, or null when the head's outputs are not emitted.</summary>
    public string? ScoreColumnName => settings.Head?.Score ?? settings.ScoreColumn;

    /// <summary>The head's probability column (Boolean label), or null when none is emitted.</summary>
    public string? ProbabilityColumnName => settings.Head?.Columns().Any(c => c.Value == HeadValue.Probability) == true ? settings.Head.Probability : null;

    /// <summary>The head's predicted-label column (Boolean or Key label), or null when none is emitted.</summary>
    public string? PredictedLabelColumnName => settings.Head?.Columns().Any(c => c.Value == HeadValue.PredictedLabel) == true ? settings.Head.PredictedLabel : null;

    /// <summary>Floats per row in the output column.</summary>
    public int OutputSize => encoder.FeatureSize;

    /// <summary>Number of trainable parameters of the network.</summary>
    public long ParameterCount => encoder.WhileAlive(() => network.parameters().Sum(p => p.numel()));

    /// <summary>The underlying TorchSharp encoder (owned by this transformer).</summary>
    public Modules.LinformerEncoder Encoder { get { ThrowIfDisposed(); return network.Encoder; } }

    /// <summary>
    /// Number format of the matrix products in <see cref="Transform"/> and prediction engines: a run-time choice, not
    /// saved (a saved model holds float32 weights and loads as <see cref="LinformerPrecision.Float32"/>). Set
    /// <see cref="LinformerPrecision.BFloat16"/> for about 2.5× faster products on CPUs with native bfloat16 (AVX-512
    /// BF16, AMX), within the relative bound in docs/precision.md; setting <see cref="LinformerPrecision.Float32"/> again gives
    /// bit-identical float32 outputs. On a CPU without native bfloat16 the setting stays Float32 and a warning goes to
    /// <c>MLContext.Log</c>; reading the property gives the precision in effect. Set it before encoding, not while
    /// cursors or engines are in use on other threads.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="LinformerPrecision"/>.</exception>
    public LinformerPrecision Precision
    {
        get => encoder.WhileAlive(() => network.Precision);
        set
        {
            var effective = Modules.BFloat16Support.Resolve(value, device, message => MLNetHost.Warning(env, message));
            encoder.WhileAlive(() => network.Precision = effective);
        }
    }

    /// <summary>True: the transform is a row-to-row mapping.</summary>
    public bool IsRowToRowMapper => true;

    private OutputBinding Output => new(settings.OutputColumn, settings.Head, settings.Head is null ? settings.ScoreColumn : null,
        encoder, settings.Binding, settings.Vocabulary, settings.PaddingTokenId, settings.BatchSize);

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(inputSchema);
        settings.Binding.CheckCompatible(inputSchema);
        return Output.OutputSchema(inputSchema);
    }

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new LinformerRowMapper(inputSchema, Output);
    }

    /// <summary>Encodes lazily: rows are encoded in batches as a cursor reaches them.</summary>
    public IDataView Transform(IDataView input)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(input);
        // ConvertToOnnx would otherwise take this view as the graph's root and silently export only the steps after it.
        return OnnxConversionGuard.Wrap(new LinformerDataView(input, Output), input, ConvertToOnnxRefused(Output.FeaturesColumn));
    }

    private static string ConvertToOnnxRefused(string column) => string.Create(CultureInfo.InvariantCulture,
        $"mlContext.Model.ConvertToOnnx cannot export the Linformer transform (output column '{column}'): ML.NET's converter " +
        $"would leave out its encoder and export only the steps after it. Export the encoder with " +
        $"{nameof(LinformerTransformer)}.{nameof(ExportToOnnx)}, and the steps after it with ConvertToOnnx on the rest of the pipeline, " +
        $"given mlContext.Data.Cache(this transform's output) as its input data (the graph's input is then the column '{column}'); see docs/onnx.md.");

    /// <summary>Copies this model's encoder (and input map) weights into <paramref name="target"/>, which may have other heads.</summary>
    internal void CopyWeightsInto(LinformerNetwork target) => encoder.WhileAlive(() =>
    {
        using var noGrad = no_grad();
        var source = network.state_dict();
        foreach (var (key, value) in target.state_dict())
            if ((key.StartsWith("encoder.", StringComparison.Ordinal) || key.StartsWith("input_projection.", StringComparison.Ordinal))
                && source.TryGetValue(key, out var s) && s.shape.SequenceEqual(value.shape))
                value.copy_(s);
    });

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        // Everything that can fail (disposed, serialising the weights) happens before the first byte is written.
        ThrowIfDisposed();
        var settingsJson = LinformerModelFormat.Serialize(network.Spec, settings);
        byte[] weights = encoder.WhileAlive(() =>
        {
            using var buffer = new MemoryStream();
            network.save(new BinaryWriter(buffer));   // Module.save closes its writer; ToArray still works
            return buffer.ToArray();
        });
        if (weights.Length == 0) throw new InvalidOperationException("The Linformer network produced no weights to save.");
        var hash = SHA256.HashData(weights);

        ModelContextBridge.CheckAtModel(ctx);
        ModelContextBridge.SetVersionInfo(ctx, settings.Binding.Tokenizer is not null || settings.Binding.LongInputs == LinformerLongInputs.Windows ? VersionWithTokenizerOrWindows
            : settings.Binding.VariableLength || network.Spec.SpecialTokens ? VersionWithInputLayout
            : settings.Head is null ? Version : VersionWithHead);
        ModelContextBridge.SaveNonEmptyString(ctx, settingsJson);
        ModelContextBridge.SaveBinaryStream(ctx, WeightsEntry, writer =>
        {
            writer.Write(weights.Length);
            writer.Write(weights);
            writer.Write(hash);
            // System.IO.Compression does not check an entry's CRC when reading, so the settings in Model.key need their own.
            writer.Write(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(settingsJson)));
        });
        if (settings.Binding.Tokenizer is { } tokenizer) TokenizerEntry.Save(ctx, tokenizer);
    }

    // ML.NET's loader (see MLNetLoadableModelAttribute): called by mlContext.Model.Load.
    private static LinformerTransformer Create(IHostEnvironment env, object ctx)
    {
        uint format = ModelContextBridge.CheckAtModel(ctx, Version);
        var settingsJson = ModelContextBridge.LoadNonEmptyString(ctx);
        var (spec, settings) = LinformerModelFormat.Deserialize(settingsJson);
        if (format < 0x00010005 && settings.Binding.LongInputs != LinformerLongInputs.Truncate)
            throw new InvalidDataException($"The Linformer model's settings are invalid: LongInputs ({settings.Binding.LongInputs}) needs format 1.5, the model was written in {ModelVersionInfo.Format(format)}.");
        if (settings.Binding.Kind == SequenceItemKind.Text)
            settings = settings with { Binding = settings.Binding with { Tokenizer = TokenizerEntry.Load(ctx, settings.Binding.Column, settings.Vocabulary, spec.SpecialTokens) } };
        LinformerNetwork? network = null;
        try
        {
            bool found = ModelContextBridge.TryLoadBinaryStream(ctx, WeightsEntry, reader =>
            {
                int length;
                byte[] bytes;
                try
                {
                    length = reader.ReadInt32();
                    if (length <= 0) throw new InvalidDataException($"The Linformer weights entry '{WeightsEntry}' is corrupt: it declares {length} bytes of weights.");
                    // ReadBytes allocates the declared length up front: check it against what the entry holds first.
                    var entry = reader.BaseStream;
                    if (entry.CanSeek && length > entry.Length - entry.Position)
                        throw new InvalidDataException($"The Linformer weights entry '{WeightsEntry}' is truncated: expected {length} bytes of weights, found {entry.Length - entry.Position}.");
                    bytes = reader.ReadBytes(length);
                }
                catch (EndOfStreamException) { throw new InvalidDataException($"The Linformer weights entry '{WeightsEntry}' is truncated: it ends before its length field."); }
                if (bytes.Length != length)
                    throw new InvalidDataException($"The Linformer weights entry '{WeightsEntry}' is truncated: expected {length} bytes of weights, found {bytes.Length}.");
                if (format >= 0x00010002)
                {
                    var stored = reader.ReadBytes(SHA256.HashSizeInBytes);
                    if (stored.Length != SHA256.HashSizeInBytes)
                        throw new InvalidDataException($"The Linformer weights entry '{WeightsEntry}' is truncated: expected a {SHA256.HashSizeInBytes}-byte SHA-256 after the {length} bytes of weights, found {stored.Length} bytes.");
                    var actual = SHA256.HashData(bytes);
                    if (!actual.AsSpan().SequenceEqual(stored))
                        throw new InvalidDataException($"The Linformer weights entry '{WeightsEntry}' is corrupt: its SHA-256 is {Convert.ToHexString(actual)}, the stored one {Convert.ToHexString(stored)}.");
                }
                // Every value takes at least a byte: settings asking for more values than the entry has bytes are refused
                // before a network of that size is allocated.
                double minimum = LinformerModelFormat.MinimumValues(spec);
                if (minimum > length)
                    throw new InvalidDataException(FormattableString.Invariant(
                        $"The Linformer model's weights (entry '{WeightsEntry}') do not match its stored settings: the settings describe a network of at least {minimum:0} values, the entry holds {length} bytes."));
                network = new LinformerNetwork(spec);
                var expected = network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
                if (LinformerModelFormat.DescribeStateDictMismatch(bytes, expected) is { } mismatch)
                    throw new InvalidDataException($"The Linformer model's weights (entry '{WeightsEntry}') do not match its stored settings: {mismatch}.");
                if (format >= 0x00010003)
                {
                    var stored = reader.ReadBytes(SHA256.HashSizeInBytes);
                    var actual = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(settingsJson));
                    if (stored.Length != SHA256.HashSizeInBytes)
                        throw new InvalidDataException($"The Linformer weights entry '{WeightsEntry}' is truncated: expected the settings' {SHA256.HashSizeInBytes}-byte SHA-256 after the weights' one, found {stored.Length} bytes.");
                    if (!actual.AsSpan().SequenceEqual(stored))
                        throw new InvalidDataException($"The Linformer model's settings (in 'Model.key') are corrupt: their SHA-256 is {Convert.ToHexString(actual)}, the one stored in '{WeightsEntry}' {Convert.ToHexString(stored)}.");
                }
                using var stream = new MemoryStream(bytes);
                network.load(new BinaryReader(stream), strict: true);
            });
            if (!found || network is null) throw new InvalidDataException($"The model has no '{WeightsEntry}' entry: the Linformer weights are missing.");
            var device = MLNetHost.Device(env);
            network.to(device);
            return new LinformerTransformer(env, network, device, settings);
        }
        catch (Exception ex) when (ex is not InvalidDataException and not OperationCanceledException)
        {
            network?.Dispose();
            throw new InvalidDataException($"The Linformer model's weights (entry '{WeightsEntry}') do not match its stored settings or are corrupt: {ex.Message}", ex);
        }
        catch
        {
            network?.Dispose();
            throw;
        }
    }

    private void ThrowIfDisposed() => encoder.ThrowIfDisposed();

    /// <summary>
    /// Releases the network's native memory, after waiting for batches being encoded on other threads. Using the
    /// transformer afterwards, or moving a cursor opened before, throws <see cref="ObjectDisposedException"/>.
    /// Calling it again does nothing.
    /// </summary>
    public void Dispose() => encoder.Dispose();
}
