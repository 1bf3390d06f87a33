using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

/// <summary>
/// Random state dicts shaped exactly like linformer-pytorch 0.19.3's for given arguments: the seed's names (every
/// head's <c>heads.h.E</c>/<c>.F</c> listed, as <c>state_dict()</c> does for shared modules), the seed's shapes,
/// random values, and equal copies wherever the seed shares one module.
/// </summary>
internal static class SeedStateDict
{
    /// <summary>Generates a state dict (float32 CPU tensors, insertion order = the seed's order). The caller disposes the tensors.</summary>
    /// <exception cref="ArgumentException">The seed itself could not build a model from these arguments.</exception>
    public static Dictionary<string, Tensor> Generate(SeedArguments a, long seed)
    {
        if (a.FFIntermediate is not null) throw new ArgumentException("ff_intermediate changes the layer widths; not generated.");
        if (a.DecoderMode) throw new ArgumentException("decoder_mode builds a different model; not generated.");
        int c = a.Channels, n = a.InputSize, h = a.NHead, d = a.HeadDim;
        if (c <= 0 || n <= 0 || h <= 0 || d <= 0 || a.Depth <= 0 || a.DimFF <= 0)
            throw new ArgumentException($"The seed cannot build {a}.");

        using var g = new Generator((ulong)seed);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var noGrad = no_grad();
        Tensor Normal(double std, params long[] shape) => randn(shape, generator: g).mul_(std);
        void Add(string name, Tensor t) => result.Add(name, t);
        void AddLinear(string prefix, int inFeatures, int outFeatures)
        {
            Add(prefix + "weight", Normal(1.0 / Math.Sqrt(inFeatures), outFeatures, inFeatures));
            Add(prefix + "bias", Normal(0.1, outFeatures));
        }
        void AddNorm(string prefix)
        {
            Add(prefix + "weight", Normal(0.2, c).add_(1.0));
            Add(prefix + "bias", Normal(0.2, c));
        }
        (Tensor Weight, Tensor Bias) NewProjection(int k)
        {
            if (k <= 0) throw new ArgumentException($"The seed cannot build a projection to k = {k}.");
            if (a.Method == "convolution")
            {
                int kernel = a.ConvolutionKernel(k);
                if (kernel <= 0) throw new ArgumentException($"The seed cannot build Conv1d with kernel n // k = {n} // {k} = 0.");
                return (Normal(1.0 / Math.Sqrt(d * kernel), d, d, kernel), Normal(0.1, d));   // nn.Conv1d(d, d, s, stride=s)
            }
            return (Normal(Math.Sqrt(2.0 / (n + k)), k, n), Normal(0.1, k));                  // nn.Linear(n, k), xavier-normal scale
        }
        void AddProjectionCopy(string prefix, (Tensor Weight, Tensor Bias) p)
        {
            Add(prefix + "weight", p.Weight.clone());
            Add(prefix + "bias", p.Bias.clone());
        }

        var owned = new List<Tensor>();
        (Tensor Weight, Tensor Bias) Owned((Tensor Weight, Tensor Bias) p) { owned.Add(p.Weight); owned.Add(p.Bias); return p; }

        if (a.IsLanguageModel)
        {
            if (a.NumTokens <= 0 || a.EmbeddingWidth <= 0) throw new ArgumentException($"The seed cannot build {a}.");
            Add("to_token_emb.weight", Normal(1.0, a.NumTokens, a.EmbeddingWidth));
            Add("pos_emb.inv_freq", SeedReference.InverseFrequencies(a.EmbeddingWidth));
        }

        (Tensor Weight, Tensor Bias)? everywhere = a.SavesProjections && a.ParameterSharing == "layerwise" ? Owned(NewProjection(a.DimK)) : null;
        for (int layer = 0; layer < a.Depth; layer++)
        {
            string block = a.AttentionBlock(layer);
            string fn = block + "fn.";
            if (a.SavesProjections)
            {
                int k = a.LayerDimK(layer);
                (Tensor Weight, Tensor Bias)? layerE = null, layerF = null;
                switch (a.ParameterSharing)
                {
                    case "layerwise": layerE = layerF = everywhere; break;
                    case "kv": layerE = layerF = Owned(NewProjection(k)); break;
                    case "headwise": layerE = Owned(NewProjection(k)); layerF = Owned(NewProjection(k)); break;
                    case "none": break;
                }
                for (int head = 0; head < h; head++)
                {
                    var e = layerE ?? Owned(NewProjection(k));
                    var f = layerF ?? Owned(NewProjection(k));
                    AddProjectionCopy($"{fn}heads.{head}.E.", e);
                    AddProjectionCopy($"{fn}heads.{head}.F.", f);
                }
            }
            foreach (var which in new[] { "to_q", "to_k", "to_v" })
                for (int head = 0; head < h; head++)
                    Add($"{fn}{which}.{head}.weight", Normal(1.0 / Math.Sqrt(c), d, c));
            if (a.WoIntermediateDim is { } mid)
            {
                if (mid <= 0) throw new ArgumentException($"The seed cannot build w_o_1 with {mid} outputs.");
                AddLinear(fn + "w_o_1.", h * d, mid);
                AddLinear(fn + "w_o_2.", mid, c);
            }
            else AddLinear(fn + "w_o.", h * d, c);
            AddNorm(block + "norm.");
            if (a.IncludeFF)
            {
                string ff = a.FeedForwardBlock(layer);
                AddLinear(ff + "fn.w_1.", c, a.DimFF);
                AddLinear(ff + "fn.w_2.", a.DimFF, c);
                AddNorm(ff + "norm.");
            }
        }
        if (a.ProjectsInOut)
        {
            AddLinear("linformer.project_in.", a.EmbeddingWidth, c);
            AddLinear("linformer.project_out.", c, a.EmbeddingWidth);
        }
        foreach (var t in owned.Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>()) t.Dispose();
        return result;
    }
}
