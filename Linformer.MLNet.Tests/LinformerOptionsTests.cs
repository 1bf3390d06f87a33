using System.Reflection;
using System.Text.RegularExpressions;
using Linformer.MLNet.Modules;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests;

/// <summary>
/// One options surface: the estimator's encoder settings are the encoder record's (same names, mapped in one place,
/// validated by the record's rules), and the ML.NET path needs only the root namespace.
/// </summary>
[TestClass]
public sealed partial class LinformerOptionsTests
{
    private const int N = 16;

    public sealed class Floats { [VectorType(N * 2)] public float[] Values { get; set; } = new float[N * 2]; }

    /// <summary>
    /// Options named after an encoder setting whose value comes from the input column (0 infers it); <c>Fit</c> passes
    /// the column's value to the mapping, which <see cref="FitBuildsTheEncoderTheOptionsDescribe"/> checks.
    /// </summary>
    private static readonly HashSet<string> InputShape = ["SequenceLength", "VocabularySize"];

    /// <summary>Options that change the encoder settings on purpose though they are not one, and why.</summary>
    private static readonly Dictionary<string, string> ChangesTheEncoderOnPurpose = new()
    {
        ["PyTorchWeightsPath"] = "imported float models keep the seed's model width (the input's channels) and position embedding (none)",
    };

    /// <summary>Encoder settings the estimator does not offer, and why.</summary>
    private static readonly Dictionary<string, string> EncoderOnly = new()
    {
        ["OutputIntermediateSize"] = "the seed's two-step output map; imported with PyTorchImport, not offered to ML.NET users",
        ["EmbeddingSize"] = "a token embedding narrower or wider than the model; PyTorchImport only",
        ["Causal"] = "always refused (Linformer cannot be causal)",
    };

    private static IEnumerable<PropertyInfo> OptionProperties()
        => typeof(LinformerEstimator.Options).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanRead && p.CanWrite);

    /// <summary>The record's settings (init-only properties), not its derived values.</summary>
    private static IEnumerable<PropertyInfo> EncoderSettings()
        => typeof(LinformerEncoderOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite);

    private static LinformerEncoderOptions Map(LinformerEstimator.Options o) => LinformerEstimator.EncoderOptionsOf(o, N, vocabulary: null, inputChannels: 2);

    [TestMethod]
    public void TheOptionsNameOnlyTypesOfTheRootNamespaceOrOfDotNetAndMLNet()
    {
        var ours = new HashSet<Type>();
        var foreign = new List<string>();
        void Check(Type type, string where)
        {
            if (Nullable.GetUnderlyingType(type) is { } underlying) type = underlying;
            if (type.HasElementType) type = type.GetElementType()!;
            foreach (var argument in type.IsGenericType ? type.GetGenericArguments() : []) Check(argument, where);
            string ns = type.Namespace ?? "";
            if (ns == "Linformer.MLNet") ours.Add(type);
            else if (!(ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal) || ns == "Microsoft.ML" || ns.StartsWith("Microsoft.ML.", StringComparison.Ordinal)))
                foreign.Add($"{where}: {type.FullName}");
        }
        foreach (var property in typeof(LinformerEstimator.Options).GetProperties(BindingFlags.Public | BindingFlags.Instance))
            Check(property.PropertyType, $"Options.{property.Name}");
        foreach (var method in typeof(LinformerCatalog).GetMethods(BindingFlags.Public | BindingFlags.Static))
            foreach (var parameter in method.GetParameters()) Check(parameter.ParameterType, $"LinformerCatalog.{method.Name}({parameter.Name})");
        Assert.IsEmpty(foreign, "The ML.NET path needs only `using Linformer.MLNet;`, but these types are elsewhere:\n" + string.Join("\n", foreign));
        foreach (var expected in new[] { typeof(ParameterSharing), typeof(ProjectionMethod), typeof(Activation), typeof(NormPlacement), typeof(PositionEmbedding), typeof(LinformerOutputKind) })
            Assert.Contains(expected, ours, $"{expected.Name} is set in the options and lives in Linformer.MLNet.");
    }

    [TestMethod]
    public void EveryEncoderSettingOfTheOptionsMapsToTheSameNamedSettingOfTheEncoder()
    {
        var baseline = Map(new LinformerEstimator.Options());
        var encoderSettings = EncoderSettings().ToDictionary(p => p.Name);
        var mapped = new List<string>();
        foreach (var option in OptionProperties())
        {
            encoderSettings.TryGetValue(option.Name, out var setting);
            if (InputShape.Contains(option.Name))
            {
                Assert.IsNotNull(setting, $"{option.Name} is said to be an encoder setting fed from the column, but the encoder has none.");
                continue;
            }
            var options = new LinformerEstimator.Options();
            if (!TryOtherValue(option.GetValue(options), option.PropertyType, out var other))
            {
                Assert.IsNull(setting, $"Options.{option.Name} is named after an encoder setting but has a type ({option.PropertyType}) no encoder setting has.");
                continue;
            }
            option.SetValue(options, other);
            var changed = Map(options);
            var differences = encoderSettings.Values.Where(p => !Equals(p.GetValue(baseline), p.GetValue(changed))).Select(p => p.Name).ToList();
            if (setting is null)
            {
                if (!ChangesTheEncoderOnPurpose.ContainsKey(option.Name))
                    Assert.IsEmpty(differences, $"Options.{option.Name} changes the encoder's {string.Join(", ", differences)}: an encoder setting must have the encoder's name.");
                continue;
            }
            CollectionAssert.AreEqual(new[] { option.Name }, differences, $"Options.{option.Name} must set the encoder's {option.Name} and nothing else.");
            Assert.AreEqual(other, setting.GetValue(changed), $"Options.{option.Name} = {other} must reach the encoder unchanged.");
            mapped.Add(option.Name);
        }
        var offered = mapped.Concat(InputShape).Concat(EncoderOnly.Keys).ToHashSet();
        var missing = encoderSettings.Keys.Where(k => !offered.Contains(k)).ToList();
        Assert.IsEmpty(missing, $"Encoder settings neither offered by the estimator nor listed in {nameof(EncoderOnly)} with a reason: {string.Join(", ", missing)}.");
        Assert.IsGreaterThanOrEqualTo(16, mapped.Count, "ModelWidth, ProjectedLength, Heads, Depth, ... are all mapped.");
    }

    [TestMethod]
    public void FitBuildsTheEncoderTheOptionsDescribe()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Floats() });
        // Every encoder setting away from its default (FullAttention aside: it would leave k unused), in one valid combination.
        var options = new LinformerEstimator.Options
        {
            InputColumnName = "Values", SequenceLength = N, Channels = 2, Epochs = 0,
            ModelWidth = 12, ProjectedLength = 8, Heads = 4, Depth = 3, FeedForwardSize = 24, HeadWidth = 5,
            Dropout = 0.25, FeedForwardDropout = 0.3, Activation = Activation.Relu, Sharing = ParameterSharing.None,
            ProjectionMethod = ProjectionMethod.Convolution, ProjectedLengthReductionPerLayer = 4, FullAttention = false,
            IncludeFeedForward = false, NormPlacement = NormPlacement.PreNorm, PositionEmbedding = PositionEmbedding.Learned,
        };
        using var model = ml.Transforms.Linformer(options).Fit(data);
        var encoder = model.Spec.Encoder;
        Assert.AreEqual(N, encoder.SequenceLength);
        Assert.IsNull(encoder.VocabularySize);
        foreach (var option in OptionProperties().Where(o => EncoderSettings().Any(s => s.Name == o.Name) && !InputShape.Contains(o.Name)))
            Assert.AreEqual(option.GetValue(options), typeof(LinformerEncoderOptions).GetProperty(option.Name)!.GetValue(encoder), $"{option.Name} of the fitted encoder.");
    }

    [TestMethod]
    public void AnInvalidEncoderSettingOnTheEstimatorGivesTheEncodersMessage()
    {
        var ml = new MLContext(1);
        LinformerEstimator.Options Options() => new()
        {
            InputColumnName = "Values", ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 2, FeedForwardSize = 16, Epochs = 0,
        };
        // The same settings written out as the encoder's record (the estimator adds a sinusoidal position embedding).
        var record = new LinformerEncoderOptions
        {
            SequenceLength = N, ModelWidth = 8, ProjectedLength = 4, Heads = 2, Depth = 2, FeedForwardSize = 16,
            Dropout = LinformerEstimator.Defaults.Dropout, FeedForwardDropout = LinformerEstimator.Defaults.Dropout,
            PositionEmbedding = PositionEmbedding.Sinusoidal,
        };
        record.Validate();
        var cases = new (string Name, Action<LinformerEstimator.Options> OnEstimator, LinformerEncoderOptions OnEncoder)[]
        {
            ("ModelWidth 0", o => o.ModelWidth = 0, record with { ModelWidth = 0 }),
            ("Heads not dividing ModelWidth", o => o.Heads = 3, record with { Heads = 3 }),
            ("Depth 0", o => o.Depth = 0, record with { Depth = 0 }),
            ("FeedForwardSize 0", o => o.FeedForwardSize = 0, record with { FeedForwardSize = 0 }),
            ("HeadWidth 0", o => o.HeadWidth = 0, record with { HeadWidth = 0 }),
            ("ProjectedLength 0", o => o.ProjectedLength = 0, record with { ProjectedLength = 0 }),
            ("Dropout 1", o => o.Dropout = 1, record with { Dropout = 1 }),
            ("FeedForwardDropout -0.5", o => o.FeedForwardDropout = -0.5, record with { FeedForwardDropout = -0.5 }),
            ("ProjectedLengthReductionPerLayer -1", o => o.ProjectedLengthReductionPerLayer = -1, record with { ProjectedLengthReductionPerLayer = -1 }),
            ("k reduction with one layerwise projection", o => o.ProjectedLengthReductionPerLayer = 1, record with { ProjectedLengthReductionPerLayer = 1 }),
            ("Sharing 42", o => o.Sharing = (ParameterSharing)42, record with { Sharing = (ParameterSharing)42 }),
            ("ProjectionMethod 42", o => o.ProjectionMethod = (ProjectionMethod)42, record with { ProjectionMethod = (ProjectionMethod)42 }),
            ("Activation 42", o => o.Activation = (Activation)42, record with { Activation = (Activation)42 }),
            ("NormPlacement 42", o => o.NormPlacement = (NormPlacement)42, record with { NormPlacement = (NormPlacement)42 }),
            ("PositionEmbedding 42", o => o.PositionEmbedding = (PositionEmbedding)42, record with { PositionEmbedding = (PositionEmbedding)42 }),
            ("odd width with the sinusoidal embedding", o => { o.ModelWidth = 7; o.Heads = 1; }, record with { ModelWidth = 7, Heads = 1 }),
        };
        foreach (var (name, onEstimator, onEncoder) in cases)
        {
            var expected = Assert.Throws<ArgumentException>(() => onEncoder.Validate(), name);
            var options = Options();
            onEstimator(options);
            var actual = Assert.Throws<ArgumentException>(() => ml.Transforms.Linformer(options), name);
            Assert.AreEqual(expected.GetType(), actual.GetType(), name);
            Assert.AreEqual(expected.Message, actual.Message, name);
            Assert.AreEqual(expected.ParamName, actual.ParamName, name);
        }

        // Rules on the sequence length wait for the column; the message then names it.
        var data = ml.Data.LoadFromEnumerable(new[] { new Floats() });
        foreach (var (name, onEstimator, onEncoder) in new (string, Action<LinformerEstimator.Options>, LinformerEncoderOptions)[]
        {
            ("k above N", o => o.ProjectedLength = 32, record with { ProjectedLength = 32 }),
            ("convolution with N not a multiple of k", o => { o.ProjectionMethod = ProjectionMethod.Convolution; o.ProjectedLength = 5; },
                record with { ProjectionMethod = ProjectionMethod.Convolution, ProjectedLength = 5 }),
        })
        {
            var expected = Assert.Throws<ArgumentException>(() => onEncoder.Validate(), name);
            var options = Options();
            options.Channels = 2;
            onEstimator(options);
            var estimator = ml.Transforms.Linformer(options);
            var actual = Assert.Throws<ArgumentException>(() => estimator.Fit(data), name);
            StringAssert.StartsWith(actual.Message, $"The Linformer settings do not fit column 'Values' (N = {N}): {expected.Message}", name);
        }
    }

    [TestMethod]
    public void TheReadmeNamesTheSeedArgumentOfEachEncoderSettingAsTheImportDoes()
    {
        // The table under "The encoder without ML.NET": | `Setting` | `seed argument` or — | default | meaning |
        string readme = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md"));
        int start = readme.IndexOf("## The encoder without ML.NET", StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, start, "README.md has a section 'The encoder without ML.NET'.");
        string section = readme[start..readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal)];
        var rows = TableRow().Matches(section).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value.Trim('`'));
        var settings = EncoderSettings().Select(p => p.Name).ToList();
        var undocumented = settings.Where(s => !rows.ContainsKey(s)).ToList();
        Assert.IsEmpty(undocumented, $"Encoder settings missing from the README's table: {string.Join(", ", undocumented)}.");
        foreach (var setting in settings)
        {
            string expected = PyTorchArguments.OfSetting.TryGetValue(setting, out var argument) ? argument : "—";
            Assert.AreEqual(expected, rows[setting], $"The README's seed argument of {setting}.");
        }
    }

    [TestMethod]
    public void TheReadmesOptionsTableNamesTheSeedArgumentOfEachEncoderSettingAsTheImportDoes()
    {
        // The table under "### Options": | `Option` | default | meaning | seed argument |
        string readme = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md"));
        int start = readme.IndexOf("### Options", StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, start, "README.md has a section 'Options'.");
        string section = readme[start..readme.IndexOf("\n##", start + 1, StringComparison.Ordinal)];
        var lastCell = new Dictionary<string, string>();
        foreach (var line in section.Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal)))
        {
            var cells = UnescapedBar().Split(line.Trim()).Select(c => c.Trim()).Where(c => c.Length > 0).ToList();
            lastCell[cells[0].Trim('`')] = cells[^1];
        }
        var checkedSettings = new List<string>();
        foreach (var option in OptionProperties().Select(p => p.Name))
        {
            if (!PyTorchArguments.OfSetting.TryGetValue(option, out var argument) || typeof(LinformerEncoderOptions).GetProperty(option) is null) continue;
            Assert.IsTrue(lastCell.TryGetValue(option, out var cell), $"README.md's options table has no row for {option}.");
            StringAssert.StartsWith(cell, $"`{argument}`", $"The README's seed argument of the option {option}.");
            checkedSettings.Add(option);
        }
        Assert.IsGreaterThanOrEqualTo(15, checkedSettings.Count, "The options with a seed argument are checked.");
    }

    [GeneratedRegex(@"^\| `(\w+)` \| ([^|]+?) \|", RegexOptions.Multiline)]
    private static partial Regex TableRow();

    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex UnescapedBar();

    /// <summary>A value other than <paramref name="value"/> for a setting of type <paramref name="type"/>.</summary>
    private static bool TryOtherValue(object? value, Type type, out object? other)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        var t = underlying ?? type;
        if (underlying is not null && value is null)
        {
            other = t.IsEnum ? Enum.GetValues(t).GetValue(0) : t == typeof(int) ? 5 : null;
            return other is not null;
        }
        other = value switch
        {
            string text => text + "-other",
            null when type == typeof(string) => "other",
            int i => i + 3,
            double d => d + 0.25,
            bool b => !b,
            Enum e => Enum.GetValues(t).Cast<object>().First(v => !v.Equals(e)),
            _ => null,
        };
        return other is not null;
    }
}
