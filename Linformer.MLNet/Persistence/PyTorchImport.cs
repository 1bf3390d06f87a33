using System.Globalization;
using System.Text.Json;
using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;
using O = Linformer.MLNet.Modules.LinformerEncoderOptions;

namespace Linformer.MLNet.Persistence;

/// <summary>
/// Brings models trained with the Python library <c>linformer-pytorch</c> (0.19.x) into .NET: its constructor
/// arguments become <see cref="LinformerEncoderOptions"/>, and its state dict (saved as safetensors) is loaded by
/// the seed's parameter names into a <see cref="LinformerEncoder"/>.
/// </summary>
public static class PyTorchImport
{
    // The arguments with an encoder setting come from the one table (PyTorchArguments); these are checked, then
    // left out (see the remarks of OptionsFromSeedArguments) or refused.
    private static readonly HashSet<string> LinformerArguments = new(
        PyTorchArguments.OfSetting.Where(kv => !PyTorchArguments.LanguageModelOnly.Contains(kv.Key)).Select(kv => kv.Value)
            .Concat(["checkpoint_level", "decoder_mode", "ff_intermediate"]),
        StringComparer.Ordinal);

    private static readonly HashSet<string> LanguageModelArguments = new(
        PyTorchArguments.OfSetting.Values.Concat(LinformerArguments).Concat(["return_emb", "dropout_tokens"]),
        StringComparer.Ordinal);

    /// <summary>
    /// Translates the seed's constructor arguments into options, with the seed's defaults for omitted ones.
    /// </summary>
    /// <remarks>
    /// Two arguments act only in training and are checked, then left out: <c>checkpoint_level</c> (gradient
    /// checkpointing; the seed then refuses an <c>input_mask</c> in <c>forward</c>) and
    /// <c>LinformerLM</c>'s <c>dropout_tokens</c> (dropout on the embedded tokens, off in eval mode). The encoder
    /// has no token dropout, so the imported weights give the seed's eval output; training the imported encoder
    /// further drops no tokens.
    /// </remarks>
    /// <param name="className"><c>Linformer</c> (float sequences) or <c>LinformerLM</c> (token ids; needs <c>return_emb=True</c>).</param>
    /// <param name="kwargs">The keyword arguments, as JSON values.</param>
    /// <exception cref="ArgumentException">An unknown class or argument, an argument of the wrong type, or one this library cannot honour
    /// (<c>causal</c>, <c>decoder_mode</c>, <c>ff_intermediate</c>, <c>return_emb=False</c>); the message names it.</exception>
    public static LinformerEncoderOptions OptionsFromSeedArguments(string className, IReadOnlyDictionary<string, JsonElement> kwargs)
    {
        ArgumentNullException.ThrowIfNull(kwargs);
        bool lm = className switch
        {
            "Linformer" => false,
            "LinformerLM" => true,
            _ => throw new ArgumentException($"Unknown linformer-pytorch class '{className}'; expected 'Linformer' or 'LinformerLM'.", nameof(className)),
        };
        var known = lm ? LanguageModelArguments : LinformerArguments;
        foreach (var key in kwargs.Keys)
            if (!known.Contains(key))
                throw new ArgumentException($"Unknown {className} argument '{key}'; known: {string.Join(", ", known.Order())}.", nameof(kwargs));

        var a = new Args(className, kwargs);
        if (a.Bool(nameof(O.Causal), false))
            throw new ArgumentException("causal=True cannot be honoured: Linformer's sequence-axis projection mixes future positions into every projected key and value, so the seed's causal mode leaks the future. Train a non-causal encoder instead.", nameof(kwargs));
        if (a.Bool("decoder_mode", false))
            throw new ArgumentException("decoder_mode=True (encoder-decoder cross attention) is not supported; import the encoder only.", nameof(kwargs));
        if (a.NullableInt("ff_intermediate") is not null)
            throw new ArgumentException("ff_intermediate (changing the width between layers) is not supported.", nameof(kwargs));
        if (lm && !a.Bool("return_emb", false))
            throw new ArgumentException("LinformerLM is imported as an encoder: it needs return_emb=True (the language-model logits head is not part of the encoder).", nameof(kwargs));
        string checkpoint = a.String("checkpoint_level", "C0");
        if (checkpoint is not ("C0" or "C1" or "C2"))
            throw new ArgumentException($"checkpoint_level '{checkpoint}' must be C0, C1 or C2.", nameof(kwargs));
        if (lm)
        {
            // torch.nn.Dropout's own rule; the value is not used (see remarks).
            double dropoutTokens = a.Double("dropout_tokens", 0.1);
            if (!(dropoutTokens >= 0 && dropoutTokens <= 1))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"dropout_tokens ({dropoutTokens}) must be a probability in [0, 1], as torch.nn.Dropout requires."), nameof(kwargs));
        }

        var sharing = a.Choice(nameof(O.Sharing), PyTorchArguments.SharingValues, ParameterSharing.Layerwise);
        int reduce = a.Int(nameof(O.ProjectedLengthReductionPerLayer), 0);
        // The seed hands one layerwise projection, built for dim_k, to every layer: k_reduce_by_layer has no effect there.
        if (sharing == ParameterSharing.Layerwise) reduce = 0;

        // Defaults: the seed's, which differ between Linformer and LinformerLM.
        return new LinformerEncoderOptions
        {
            SequenceLength = a.RequiredInt(nameof(O.SequenceLength)),
            ModelWidth = a.RequiredInt(nameof(O.ModelWidth)),
            ProjectedLength = lm ? a.Int(nameof(O.ProjectedLength), 64) : a.RequiredInt(nameof(O.ProjectedLength)),
            FeedForwardSize = a.Int(nameof(O.FeedForwardSize), lm ? 1024 : 256),
            HeadWidth = a.NullableInt(nameof(O.HeadWidth)),
            FeedForwardDropout = a.Double(nameof(O.FeedForwardDropout), lm ? 0.1 : 0.15),
            Heads = a.Int(nameof(O.Heads), 4),
            Depth = a.Int(nameof(O.Depth), lm ? 2 : 1),
            Dropout = a.Double(nameof(O.Dropout), lm ? 0.05 : 0.1),
            Activation = a.Choice(nameof(O.Activation), PyTorchArguments.ActivationValues, Activation.Gelu),
            Sharing = sharing,
            ProjectedLengthReductionPerLayer = reduce,
            ProjectionMethod = a.Choice(nameof(O.ProjectionMethod), PyTorchArguments.MethodValues, ProjectionMethod.Learnable),
            FullAttention = a.Bool(nameof(O.FullAttention), false),
            IncludeFeedForward = a.Bool(nameof(O.IncludeFeedForward), true),
            OutputIntermediateSize = a.NullableInt(nameof(O.OutputIntermediateSize)),
            NormPlacement = NormPlacement.PostNorm,
            VocabularySize = lm ? a.RequiredInt(nameof(O.VocabularySize)) : null,
            EmbeddingSize = lm ? a.NullableInt(nameof(O.EmbeddingSize)) : null,
            PositionEmbedding = lm ? PositionEmbedding.Sinusoidal : PositionEmbedding.None,
        }.Validate();
    }

    /// <summary>Builds an encoder for <paramref name="options"/> and loads a seed state dict from a safetensors file.</summary>
    /// <exception cref="InvalidDataException">The file is invalid, or a tensor is missing, unexpected or of the wrong shape.</exception>
    public static LinformerEncoder LoadEncoder(LinformerEncoderOptions options, string weightsPath)
    {
        ArgumentNullException.ThrowIfNull(options);
        var state = SafeTensors.Read(weightsPath);
        var encoder = new LinformerEncoder(options);
        try
        {
            LoadSeedStateDict(encoder, state, Path.GetFileName(weightsPath));
            return encoder;
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }

    /// <summary>
    /// Copies a <c>linformer-pytorch</c> state dict (the seed's parameter names) into <paramref name="encoder"/>.
    /// Strict: every parameter must be present with the right shape, no unknown tensor may remain, and
    /// copies of a shared projection must be equal.
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing, unexpected, of the wrong shape, or shared copies differ.</exception>
    public static void LoadSeedStateDict(LinformerEncoder encoder, IReadOnlyDictionary<string, Tensor> state, string source = "state dict")
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(state);
        var o = encoder.Options;
        if (o.ProjectionMethod == ProjectionMethod.Fixed && !o.FullAttention)
            throw new InvalidDataException("linformer-pytorch does not save its 'no_params' projection matrices, so weights trained with method='no_params' cannot be reproduced from a state dict.");
        var loader = new StateLoader(state, source);
        string root = o.UsesTokens ? (o.EffectiveEmbeddingSize != o.ModelWidth ? "linformer.fn." : "linformer.") : "";
        int h = o.Heads, d = o.EffectiveHeadWidth;
        long hd = (long)h * d;

        using var noGrad = no_grad();
        if (o.UsesTokens)
        {
            loader.Copy("to_token_emb.weight", encoder.TokenEmbedding!.weight!);
            loader.Ignore("pos_emb.inv_freq");   // recomputed; a buffer of the seed
            if (encoder.ProjectIn is not null)
            {
                loader.Copy("linformer.project_in.weight", encoder.ProjectIn.weight!);
                loader.Copy("linformer.project_in.bias", encoder.ProjectIn.bias!);
                loader.Copy("linformer.project_out.weight", encoder.ProjectOut!.weight!);
                loader.Copy("linformer.project_out.bias", encoder.ProjectOut!.bias!);
            }
        }

        var loadedProjections = new HashSet<SequenceProjection>(ReferenceEqualityComparer.Instance);
        var layers = encoder.Layers;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            var attention = layer.Attention;
            string a = $"{root}seq.{(o.IncludeFeedForward ? 2 * i : i)}.";
            var qkv = attention.Qkv.weight!;                                  // (3·H·D, C)
            for (int head = 0; head < h; head++)
            {
                loader.Copy($"{a}fn.to_q.{head}.weight", qkv.narrow(0, head * d, d));
                loader.Copy($"{a}fn.to_k.{head}.weight", qkv.narrow(0, hd + head * d, d));
                loader.Copy($"{a}fn.to_v.{head}.weight", qkv.narrow(0, 2 * hd + head * d, d));
            }
            if (attention.Output is not null)
            {
                loader.Copy($"{a}fn.w_o.weight", attention.Output.weight!);
                loader.Copy($"{a}fn.w_o.bias", attention.Output.bias!);
            }
            else
            {
                loader.Copy($"{a}fn.w_o_1.weight", attention.Output1!.weight!);
                loader.Copy($"{a}fn.w_o_1.bias", attention.Output1!.bias!);
                loader.Copy($"{a}fn.w_o_2.weight", attention.Output2!.weight!);
                loader.Copy($"{a}fn.w_o_2.bias", attention.Output2!.bias!);
            }
            loader.Copy($"{a}norm.weight", layer.AttentionNorm.weight!);
            loader.Copy($"{a}norm.bias", layer.AttentionNorm.bias!);

            for (int head = 0; head < h; head++)
            {
                foreach (var (which, projection) in new[] { ("E", attention.KeyProjection), ("F", attention.ValueProjection) })
                {
                    string prefix = $"{a}fn.heads.{head}.{which}.";
                    if (projection is null)
                    {
                        loader.IgnorePrefix(prefix);   // full attention: the seed builds E/F but never uses them
                        continue;
                    }
                    int group = projection.Groups == 1 ? 0 : head;
                    // The first place that uses a shared projection loads it; every other copy must be equal.
                    bool first = projection.Groups == 1 ? loadedProjections.Add(projection) : true;
                    loader.CopyProjection(prefix, projection, group, verifyOnly: !first);
                }
            }

            if (layer.FeedForwardBlock is { } ff)
            {
                string f = $"{root}seq.{2 * i + 1}.";
                loader.Copy($"{f}fn.w_1.weight", ff.W1.weight!);
                loader.Copy($"{f}fn.w_1.bias", ff.W1.bias!);
                loader.Copy($"{f}fn.w_2.weight", ff.W2.weight!);
                loader.Copy($"{f}fn.w_2.bias", ff.W2.bias!);
                loader.Copy($"{f}norm.weight", layer.FeedForwardNorm!.weight!);
                loader.Copy($"{f}norm.bias", layer.FeedForwardNorm!.bias!);
            }
        }
        loader.ThrowOnUnused();
    }

    private sealed class StateLoader(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        private readonly HashSet<string> used = new(StringComparer.Ordinal);

        public Tensor Get(string key, long[] expectedShape)
        {
            if (!state.TryGetValue(key, out var t))
                throw new InvalidDataException($"{source}: missing tensor '{key}' (expected shape [{string.Join(", ", expectedShape)}]).");
            if (!t.shape.SequenceEqual(expectedShape))
                throw new InvalidDataException($"{source}: tensor '{key}' has shape [{string.Join(", ", t.shape)}]; the model built from the arguments expects [{string.Join(", ", expectedShape)}].");
            if (!t.is_floating_point())
                throw new InvalidDataException($"{source}: tensor '{key}' has dtype {t.dtype}; expected a floating-point tensor.");
            used.Add(key);
            return t;
        }

        public void Copy(string key, Tensor target) => target.copy_(Get(key, target.shape));

        public void CopyProjection(string prefix, SequenceProjection p, int group, bool verifyOnly)
        {
            Tensor weightTarget, biasTarget;
            if (p.Method == ProjectionMethod.Convolution)
            {
                // Ours: (G·D, D, s), bias (G·D); the seed's per head: (D, D, s), bias (D).
                weightTarget = p.Weight.narrow(0, (long)group * p.HeadWidth, p.HeadWidth);
                biasTarget = p.Bias!.narrow(0, (long)group * p.HeadWidth, p.HeadWidth);
            }
            else
            {
                // Ours: (G, K, N), bias (G, K); the seed's nn.Linear(N, K): (K, N), bias (K).
                weightTarget = p.Weight[group];
                biasTarget = p.Bias![group];
            }
            var w = Get(prefix + "weight", weightTarget.shape);
            var b = Get(prefix + "bias", biasTarget.shape);
            if (verifyOnly)
            {
                if (!SameValues(w, weightTarget) || !SameValues(b, biasTarget))
                    throw new InvalidDataException($"{source}: '{prefix}weight/bias' differs from the first copy of the same shared projection; the state dict does not match the parameter_sharing argument.");
                return;
            }
            weightTarget.copy_(w);
            biasTarget.copy_(b);
        }

        private static bool SameValues(Tensor a, Tensor b)
        {
            using var scope = NewDisposeScope();
            return a.to_type(b.dtype).eq(b).all().item<bool>();
        }

        public void Ignore(string key) => used.Add(key);

        public void IgnorePrefix(string prefix)
        {
            foreach (var key in state.Keys) if (key.StartsWith(prefix, StringComparison.Ordinal)) used.Add(key);
        }

        public void ThrowOnUnused()
        {
            var unused = state.Keys.Where(k => !used.Contains(k)).Order().ToList();
            if (unused.Count > 0)
                throw new InvalidDataException($"{source}: {unused.Count} tensor(s) do not belong to the model built from the arguments: {string.Join(", ", unused.Take(10))}{(unused.Count > 10 ? ", ..." : "")}.");
        }
    }

    /// <summary>
    /// The keyword arguments, read by encoder setting (translated through <see cref="PyTorchArguments"/>) or, for
    /// arguments without a setting, by their own name.
    /// </summary>
    private sealed class Args(string className, IReadOnlyDictionary<string, JsonElement> kwargs)
    {
        private static string Argument(string name)
            => PyTorchArguments.OfSetting.TryGetValue(name, out var argument) ? argument : name;

        private JsonElement? Get(string name)
            => kwargs.TryGetValue(Argument(name), out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public int RequiredInt(string name)
            => NullableInt(name) ?? throw new ArgumentException($"{className} argument '{Argument(name)}' is required.", nameof(kwargs));

        public int Int(string name, int fallback) => NullableInt(name) ?? fallback;

        public int? NullableInt(string name)
        {
            if (Get(name) is not { } v) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
            throw new ArgumentException($"{className} argument '{Argument(name)}' must be an integer; got {v.GetRawText()}.", nameof(kwargs));
        }

        public double Double(string name, double fallback)
        {
            if (Get(name) is not { } v) return fallback;
            if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
            throw new ArgumentException($"{className} argument '{Argument(name)}' must be a number; got {v.GetRawText()}.", nameof(kwargs));
        }

        public bool Bool(string name, bool fallback)
        {
            if (Get(name) is not { } v) return fallback;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ArgumentException($"{className} argument '{Argument(name)}' must be true or false; got {v.GetRawText()}.", nameof(kwargs)),
            };
        }

        public string String(string name, string fallback)
        {
            if (Get(name) is not { } v) return fallback;
            if (v.ValueKind == JsonValueKind.String) return v.GetString()!;
            throw new ArgumentException($"{className} argument '{Argument(name)}' must be a string; got {v.GetRawText()}.", nameof(kwargs));
        }

        /// <summary>A string argument whose values stand for an enum's (<c>parameter_sharing='kv'</c>).</summary>
        public T Choice<T>(string setting, IReadOnlyList<(string Value, T Setting)> values, T fallback) where T : struct, Enum
        {
            if (Get(setting) is null) return fallback;
            string given = String(setting, "");
            foreach (var (value, choice) in values)
                if (value == given) return choice;
            throw new ArgumentException($"{Argument(setting)} '{given}' must be one of {string.Join(", ", values.Select(v => v.Value))}.", nameof(kwargs));
        }
    }
}
