using Linformer.MLNet.Data;
using Linformer.MLNet.Persistence;
using Linformer.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

[assembly: MLNetLoadableModel(typeof(Linformer.MLNet.LinformerTransformer), "Linformer encoder", Linformer.MLNet.LinformerTransformer.LoaderSignature)]

namespace Linformer.MLNet;

/// <summary>How a fitted transformer reads and writes columns.</summary>
internal sealed record TransformerSettings(InputBinding Binding, string OutputColumn, string? ScoreColumn, LinformerOutputKind OutputKind,
    int Vocabulary, int? PaddingTokenId, int BatchSize);

/// <summary>
/// A fitted Linformer encoder: encodes the sequence column into <c>Vector&lt;Single&gt;</c> features (and optional
/// scores) lazily, in batches, on CPU or CUDA. Saves and loads with <c>mlContext.Model.Save</c> / <c>Load</c>
/// (weights inside the zip; no registration call needed). Owns native memory: dispose it (or the
/// <c>TransformerChain</c> holding it) when done; a default <c>PredictionEngine</c> made from it disposes it too.
/// Thread-safe for concurrent cursors and prediction engines.
/// </summary>
public sealed class LinformerTransformer : ITransformer, IDisposable
{
    internal const string LoaderSignature = "LinformerTransformer";
    private const string WeightsEntry = "LinformerWeights";
    private static readonly ModelVersionInfo Version = new(
        modelSignature: "LINFORMR",
        versionWritten: 0x00010001,   // format 1: settings JSON + network state dict
        versionReadable: 0x00010001,
        versionWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(LinformerTransformer).Assembly.GetName().Name!);

    private readonly IHostEnvironment env;
    private readonly LinformerNetwork network;
    private readonly Device device;
    private readonly TransformerSettings settings;
    private readonly BatchEncoder encoder;
    private bool disposed;

    internal LinformerTransformer(IHostEnvironment env, LinformerNetwork network, Device device, TransformerSettings settings)
    {
        this.env = env;
        this.network = network;
        this.device = device;
        this.settings = settings;
        encoder = new BatchEncoder(network, device, settings.OutputKind, settings.ScoreColumn is not null);
    }

    internal NetworkSpec Spec => network.Spec;
    internal InputBinding Binding => settings.Binding;
    internal LinformerNetwork Network { get { ThrowIfDisposed(); return network; } }

    /// <summary>The output column's name.</summary>
    public string OutputColumnName => settings.OutputColumn;

    /// <summary>The input column's name.</summary>
    public string InputColumnName => settings.Binding.Column;

    /// <summary>The score column's name, or null when no score is emitted.</summary>
    public string? ScoreColumnName => settings.ScoreColumn;

    /// <summary>Floats per row in the output column.</summary>
    public int OutputSize => encoder.FeatureSize;

    /// <summary>Number of trainable parameters of the network.</summary>
    public long ParameterCount { get { ThrowIfDisposed(); return network.parameters().Sum(p => p.numel()); } }

    /// <summary>The underlying TorchSharp encoder (owned by this transformer).</summary>
    public Modules.LinformerEncoder Encoder { get { ThrowIfDisposed(); return network.Encoder; } }

    /// <summary>True: the transform is a row-to-row mapping.</summary>
    public bool IsRowToRowMapper => true;

    private OutputBinding Output => new(settings.OutputColumn, settings.ScoreColumn, network.Spec.Head == HeadKind.Classification,
        encoder, settings.Binding, settings.Vocabulary, settings.PaddingTokenId, settings.BatchSize);

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
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
        return new LinformerDataView(input, Output);
    }

    /// <summary>Copies this model's encoder (and input map) weights into <paramref name="target"/>, which may have other heads.</summary>
    internal void CopyWeightsInto(LinformerNetwork target)
    {
        ThrowIfDisposed();
        using var noGrad = no_grad();
        var source = network.state_dict();
        foreach (var (key, value) in target.state_dict())
            if ((key.StartsWith("encoder.", StringComparison.Ordinal) || key.StartsWith("input_projection.", StringComparison.Ordinal))
                && source.TryGetValue(key, out var s) && s.shape.SequenceEqual(value.shape))
                value.copy_(s);
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(ctx);
        ModelContextBridge.CheckAtModel(ctx);
        ModelContextBridge.SetVersionInfo(ctx, Version);
        ModelContextBridge.SaveNonEmptyString(ctx, LinformerModelFormat.Serialize(network.Spec, settings));
        ModelContextBridge.SaveBinaryStream(ctx, WeightsEntry, writer =>
        {
            using var cpu = new MemoryStream();
            network.save(new BinaryWriter(cpu));   // Module.save closes its writer
            var bytes = cpu.ToArray();
            writer.Write(bytes.Length);
            writer.Write(bytes);
        });
    }

    // ML.NET's loader (see MLNetLoadableModelAttribute): called by mlContext.Model.Load.
    private static LinformerTransformer Create(IHostEnvironment env, object ctx)
    {
        ModelContextBridge.CheckAtModel(ctx, Version);
        var (spec, settings) = LinformerModelFormat.Deserialize(ModelContextBridge.LoadNonEmptyString(ctx));
        var network = new LinformerNetwork(spec);
        try
        {
            bool found = ModelContextBridge.TryLoadBinaryStream(ctx, WeightsEntry, reader =>
            {
                int length = reader.ReadInt32();
                var bytes = reader.ReadBytes(length);
                if (length < 0 || bytes.Length != length)
                    throw new InvalidDataException($"The Linformer weights are truncated: expected {length} bytes, found {bytes.Length}.");
                using var stream = new MemoryStream(bytes);
                network.load(new BinaryReader(stream), strict: true);
            });
            if (!found) throw new InvalidDataException($"The model has no '{WeightsEntry}' entry: the Linformer weights are missing.");
            var device = MLNetHost.Device(env);
            network.to(device);
            return new LinformerTransformer(env, network, device, settings);
        }
        catch (Exception ex) when (ex is not InvalidDataException and not OperationCanceledException)
        {
            network.Dispose();
            throw new InvalidDataException($"The Linformer model's weights do not match its stored settings or are corrupt: {ex.Message}", ex);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    /// <summary>Releases the network's native memory. Using the transformer afterwards throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        network.Dispose();
    }
}
