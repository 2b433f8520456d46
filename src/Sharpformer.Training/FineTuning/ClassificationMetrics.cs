using ScottPlot;

namespace Sharpformer.Training.FineTuning;

/// <summary>Precision, recall, F1 and support of one class (or entity type).</summary>
/// <param name="Label">The class.</param>
/// <param name="Precision">TP / (TP + FP), 0 when nothing was predicted.</param>
/// <param name="Recall">TP / (TP + FN), 0 when the class never occurs.</param>
/// <param name="F1">2PR / (P + R), 0 when both are 0.</param>
/// <param name="Support">How often the class occurs in the references.</param>
public sealed record ClassScores(string Label, double Precision, double Recall, double F1, int Support);

/// <summary>Classification scores: accuracy, macro averages, per-class scores and the confusion matrix.</summary>
/// <param name="Accuracy">Share of exact matches.</param>
/// <param name="MacroPrecision">Unweighted mean precision over the classes that occur in references or predictions (scikit-learn's macro average).</param>
/// <param name="MacroRecall">Unweighted mean recall over the same classes.</param>
/// <param name="MacroF1">Unweighted mean F1 over the same classes.</param>
/// <param name="PerClass">Scores of every label, in label order.</param>
/// <param name="ConfusionMatrix">[true, predicted] counts over all labels, in label order.</param>
public sealed record ClassificationReport(double Accuracy, double MacroPrecision, double MacroRecall, double MacroF1, IReadOnlyList<ClassScores> PerClass, int[,] ConfusionMatrix)
{
    /// <summary>The values for the trainer's log: accuracy, macro_f1, macro_precision, macro_recall.</summary>
    /// <returns>The metrics by name.</returns>
    public IReadOnlyDictionary<string, double> ToMetrics() => new Dictionary<string, double>
    {
        ["accuracy"] = Accuracy,
        ["macro_f1"] = MacroF1,
        ["macro_precision"] = MacroPrecision,
        ["macro_recall"] = MacroRecall,
    };
}

/// <summary>Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix, as scikit-learn computes them (zero_division = 0).</summary>
public static class ClassificationMetrics
{
    /// <summary>Scores predicted class ids against reference ids.</summary>
    /// <param name="predictions">Predicted class ids.</param>
    /// <param name="references">True class ids.</param>
    /// <param name="labels">The label names in id order.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The lists differ in length, are empty, or hold an id outside the labels.</exception>
    public static ClassificationReport Compute(IReadOnlyList<int> predictions, IReadOnlyList<int> references, IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(references);
        ArgumentNullException.ThrowIfNull(labels);
        if (predictions.Count != references.Count || predictions.Count == 0)
        {
            throw new ArgumentException($"Metrics need as many predictions as references, at least one: got {predictions.Count} and {references.Count}.");
        }

        var l = labels.Count;
        var matrix = new int[l, l];
        var correct = 0;
        for (var i = 0; i < predictions.Count; i++)
        {
            int p = predictions[i], r = references[i];
            if ((uint)p >= (uint)l || (uint)r >= (uint)l) throw new ArgumentException($"Class id {((uint)p >= (uint)l ? p : r)} at position {i} is outside the {l} labels.");
            matrix[r, p]++;
            if (p == r) correct++;
        }

        var perClass = new List<ClassScores>(l);
        double sumP = 0, sumR = 0, sumF = 0;
        var present = 0;
        for (var c = 0; c < l; c++)
        {
            int tp = matrix[c, c], support = 0, predicted = 0;
            for (var k = 0; k < l; k++)
            {
                support += matrix[c, k];
                predicted += matrix[k, c];
            }

            var scores = Scores(labels[c], tp, predicted, support);
            perClass.Add(scores);
            if (support > 0 || predicted > 0)
            {
                present++;
                sumP += scores.Precision;
                sumR += scores.Recall;
                sumF += scores.F1;
            }
        }

        return new ClassificationReport((double)correct / predictions.Count, sumP / present, sumR / present, sumF / present, perClass, matrix);
    }

    /// <summary>Precision, recall and F1 from counts (0 where a denominator is 0, as scikit-learn and seqeval with zero_division = 0).</summary>
    /// <param name="label">The class name.</param>
    /// <param name="truePositives">Correct predictions of the class.</param>
    /// <param name="predicted">Predictions of the class.</param>
    /// <param name="support">Occurrences in the references.</param>
    /// <returns>The scores.</returns>
    public static ClassScores Scores(string label, int truePositives, int predicted, int support)
    {
        var precision = predicted == 0 ? 0 : (double)truePositives / predicted;
        var recall = support == 0 ? 0 : (double)truePositives / support;
        var f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        return new ClassScores(label, precision, recall, f1, support);
    }

    /// <summary>Draws the confusion matrix as a heat map PNG (rows: true label, columns: predicted; counts in the cells).</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">The PNG to write (replaced atomically).</param>
    /// <param name="title">The plot title.</param>
    public static void SaveConfusionMatrixPng(ClassificationReport report, string path, string title = "confusion matrix")
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var matrix = report.ConfusionMatrix;
        var l = matrix.GetLength(0);
        var values = new double[l, l];
        for (var r = 0; r < l; r++)
        {
            for (var c = 0; c < l; c++) values[r, c] = matrix[r, c];
        }

        var plot = new Plot();
        var heat = plot.Add.Heatmap(values);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        var max = Math.Max(1, values.Cast<double>().Max());
        for (var r = 0; r < l; r++)
        {
            for (var c = 0; c < l; c++)
            {
                // The heat map draws row 0 at the top; cell centres sit at integer coordinates.
                var text = plot.Add.Text(matrix[r, c].ToString(System.Globalization.CultureInfo.InvariantCulture), c, l - 1 - r);
                text.LabelStyle.ForeColor = values[r, c] > max / 2 ? Colors.Black : Colors.White;
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = l > 12 ? 9 : 12;
            }
        }

        var ticks = Enumerable.Range(0, l).Select(i => (double)i).ToArray();
        var names = report.PerClass.Select(s => s.Label).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, names);
        plot.Axes.Bottom.TickLabelStyle.Rotation = -45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Left.SetTicks(ticks, names.Reverse().ToArray());
        plot.Title(title);
        plot.XLabel("predicted");
        plot.YLabel("true");
        plot.Add.ColorBar(heat);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        var temp = path + ".tmp";
        var size = Math.Max(600, 60 * l + 250);
        plot.SavePng(temp, size + 120, size);
        File.Move(temp, path, overwrite: true);
    }
}
