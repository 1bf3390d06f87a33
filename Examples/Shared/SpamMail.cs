namespace Linformer.MLNet.Examples;

/// <summary>One e-mail of the bundled SpamAssassin subset (Examples/data/spam): its text and whether it is spam.</summary>
public sealed class SpamMail
{
    /// <summary>True for spam, false for ham.</summary>
    public bool Label { get; set; }

    /// <summary>The mail body, one line.</summary>
    public string Text { get; set; } = "";

    /// <summary>Reads <c>Label&lt;TAB&gt;Text</c> rows (header line first; labels <c>spam</c> / <c>ham</c>), at most
    /// <paramref name="perClass"/> of each class, in file order.</summary>
    public static List<SpamMail> Load(string path, int perClass = int.MaxValue)
    {
        var rows = new List<SpamMail>();
        int spam = 0, ham = 0;
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            int tab = line.IndexOf('\t');
            if (tab < 0) throw new InvalidDataException($"{path}: a row without a tab: '{line[..Math.Min(40, line.Length)]}'");
            var label = line[..tab];
            if (label is not ("spam" or "ham")) throw new InvalidDataException($"{path}: label '{label}' is neither spam nor ham.");
            if (label == "spam" ? spam++ >= perClass : ham++ >= perClass) continue;
            rows.Add(new SpamMail { Label = label == "spam", Text = line[(tab + 1)..] });
        }
        return rows;
    }
}
