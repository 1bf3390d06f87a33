using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Linformer.MLNet.Data;
using Linformer.MLNet.Interop;
using Linformer.MLNet.Model;
using Linformer.MLNet.OnnxRuntime;
using Linformer.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Linformer.MLNet;

/// <summary>
/// A Linformer encoder that runs its exported ONNX graph in ONNX Runtime instead of TorchSharp: it reads the same
/// input columns (tokens, floats, variable-length rows, mask, truncation, reserved ids) and adds the same columns,
/// lazily and in batches, as the <see cref="LinformerTransformer"/> it was made from
/// (<see cref="LinformerOnnxRuntimeExtensions.ToOnnxRuntime(LinformerTransformer)"/>). Saves and loads with
/// <c>mlContext.Model.Save</c> / <c>Load</c> (the graph inside the zip; no registration call), and an app that loads
/// it needs no libtorch. See docs/onnx.md.
/// </summary>
/// <remarks>
/// One transformer may serve any number of threads at once (cursors and prediction engines, each used by one
/// thread). It owns the ONNX Runtime session: dispose it, or the <c>TransformerChain</c> that holds it, when done.
/// </remarks>
public sealed class LinformerOnnxTransformer : ITransformer, IDisposable
{
    internal const string LoaderSignature = "LinformerOnnxRuntime";
    private const string GraphEntry = "LinformerOnnxGraph";

    private static readonly ModelVersionInfo Version = new(
        modelSignature: "LINFONNX",
        versionWritten: 0x00010001,
        versionReadable: 0x00010001,
        versionWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(LinformerOnnxTransformer).Assembly.GetName().Name!);

    private readonly NetworkSpec spec;
    private readonly TransformerSettings settings;
    private readonly byte[] graph;
    private readonly OnnxRuntimeEncoder encoder;

    internal LinformerOnnxTransformer(NetworkSpec spec, TransformerSettings settings, byte[] graph, string graphName)
    {
        // A windowed row is encoded by the TorchSharp transform only: its windows are averaged outside the graph (docs/long-inputs.md).
        if (settings.Binding.LongInputs != LinformerLongInputs.Truncate)
            throw new NotSupportedException(
                $"The ONNX Runtime transform encodes rows of at most N positions; this model has LongInputs = {settings.Binding.LongInputs}. " +
                "Score it with the Linformer transform, or fit it with LongInputs = Truncate.");
        this.spec = spec;
        this.settings = settings;
        this.graph = graph;
        encoder = new OnnxRuntimeEncoder(typeof(LinformerOnnxTransformer), spec, settings, graph, graphName);
    }

    /// <summary>The input column's name.</summary>
    public string InputColumnName => settings.Binding.Column;

    /// <summary>The output column's name.</summary>
    public string OutputColumnName => settings.OutputColumn;

    /// <summary>Floats per row in the output column.</summary>
    public int OutputSize => encoder.FeatureSize;

    /// <summary>True: the transform is a row-to-row mapping.</summary>
    public bool IsRowToRowMapper => true;

    private OutputBinding Output => new(settings.OutputColumn, settings.Head, settings.Head is null ? settings.ScoreColumn : null,
        encoder, settings.Binding, settings.Vocabulary, settings.PaddingTokenId, settings.BatchSize);

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        encoder.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(inputSchema);
        settings.Binding.CheckCompatible(inputSchema);
        return Output.OutputSchema(inputSchema);
    }

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        encoder.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new LinformerRowMapper(inputSchema, Output);
    }

    /// <summary>Encodes lazily: rows are encoded in batches of the model's batch size as a cursor reaches them.</summary>
    public IDataView Transform(IDataView input)
    {
        encoder.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(input);
        var output = Output;
        // ConvertToOnnx would otherwise take this view as the graph's root and silently export only the steps after it.
        return OnnxConversionGuard.Wrap(new LinformerDataView(input, output), input, string.Create(CultureInfo.InvariantCulture,
            $"mlContext.Model.ConvertToOnnx cannot export the Linformer transform (output column '{output.FeaturesColumn}'): ML.NET's converter " +
            $"would leave out its encoder and export only the steps after it. The encoder's graph is the one this transform runs " +
            $"(LinformerTransformer.ExportToOnnx); export the steps after it with ConvertToOnnx on the rest of the pipeline; see docs/onnx.md."));
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        encoder.ThrowIfDisposed();
        var settingsJson = LinformerModelFormat.Serialize(spec, settings);
        ModelContextBridge.CheckAtModel(ctx);
        ModelContextBridge.SetVersionInfo(ctx, Version);
        ModelContextBridge.SaveNonEmptyString(ctx, settingsJson);
        if (settings.Binding.Tokenizer is { } tokenizer) TokenizerEntry.Save(ctx, tokenizer);
        ModelContextBridge.SaveBinaryStream(ctx, GraphEntry, writer =>
        {
            writer.Write(graph.Length);
            writer.Write(graph);
            writer.Write(SHA256.HashData(graph));
            // System.IO.Compression does not check an entry's CRC when reading, so the graph and the settings carry their own hashes.
            writer.Write(SHA256.HashData(Encoding.UTF8.GetBytes(settingsJson)));
        });
    }

    // ML.NET's loader (see Interop/LoadableModel.cs): called by mlContext.Model.Load.
    private static LinformerOnnxTransformer Create(IHostEnvironment env, object ctx)
    {
        ModelContextBridge.CheckAtModel(ctx, Version);
        var settingsJson = ModelContextBridge.LoadNonEmptyString(ctx);
        var (spec, settings) = LinformerModelFormat.Deserialize(settingsJson);
        if (settings.Binding.Kind == SequenceItemKind.Text)
            settings = settings with { Binding = settings.Binding with { Tokenizer = TokenizerEntry.Load(ctx, settings.Binding.Column, settings.Vocabulary, spec.SpecialTokens) } };
        byte[]? graph = null;
        bool found = ModelContextBridge.TryLoadBinaryStream(ctx, GraphEntry, reader =>
        {
            int length;
            try { length = reader.ReadInt32(); }
            catch (EndOfStreamException) { throw new InvalidDataException($"The Linformer ONNX graph entry '{GraphEntry}' is truncated: it ends before its length field."); }
            var entry = reader.BaseStream;
            if (length <= 0 || (entry.CanSeek && length > entry.Length - entry.Position))
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"The Linformer ONNX graph entry '{GraphEntry}' is corrupt or truncated: it declares {length} bytes of graph{(entry.CanSeek ? $", {entry.Length - entry.Position} follow" : "")}."));
            var bytes = reader.ReadBytes(length);
            var stored = reader.ReadBytes(SHA256.HashSizeInBytes);
            var storedSettings = reader.ReadBytes(SHA256.HashSizeInBytes);
            if (bytes.Length != length || stored.Length != SHA256.HashSizeInBytes || storedSettings.Length != SHA256.HashSizeInBytes)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"The Linformer ONNX graph entry '{GraphEntry}' is truncated: expected {length} bytes of graph and two {SHA256.HashSizeInBytes}-byte SHA-256 hashes."));
            var actual = SHA256.HashData(bytes);
            if (!actual.AsSpan().SequenceEqual(stored))
                throw new InvalidDataException($"The Linformer ONNX graph entry '{GraphEntry}' is corrupt: its SHA-256 is {Convert.ToHexString(actual)}, the stored one {Convert.ToHexString(stored)}.");
            var actualSettings = SHA256.HashData(Encoding.UTF8.GetBytes(settingsJson));
            if (!actualSettings.AsSpan().SequenceEqual(storedSettings))
                throw new InvalidDataException($"The Linformer model's settings (in 'Model.key') are corrupt: their SHA-256 is {Convert.ToHexString(actualSettings)}, the one stored in '{GraphEntry}' {Convert.ToHexString(storedSettings)}.");
            graph = bytes;
        });
        if (!found || graph is null) throw new InvalidDataException($"The model has no '{GraphEntry}' entry: the Linformer ONNX graph is missing.");
        return new LinformerOnnxTransformer(spec, settings, graph, $"entry '{GraphEntry}'");
    }

    /// <summary>
    /// Releases the ONNX Runtime session, after waiting for batches being encoded on other threads. Using the
    /// transformer afterwards, or moving a cursor opened before, throws <see cref="ObjectDisposedException"/>.
    /// Calling it again does nothing.
    /// </summary>
    public void Dispose() => encoder.Dispose();
}
