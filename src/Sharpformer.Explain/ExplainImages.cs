using System.Globalization;
using ScottPlot;

namespace Sharpformer.Explain;

/// <summary>The report's pictures as files beside the page: PNG heatmaps and the position picture as SVG too.</summary>
public static class ExplainImages
{
    /// <summary>
    /// Writes embeddings.png, positions.png, positions.svg, attention-layer-{l}.png (head average, one per layer) and
    /// hidden-norms.png into <paramref name="folder"/> (created if missing).
    /// </summary>
    /// <param name="report">What to draw.</param>
    /// <param name="folder">The output folder.</param>
    /// <returns>The paths written.</returns>
    public static IReadOnlyList<string> Write(ExplainReport report, string folder)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        var written = new List<string>();

        string Save(Plot plot, string name, int width, int height)
        {
            string path = Path.Combine(folder, name);
            if (name.EndsWith(".svg", StringComparison.Ordinal)) plot.SaveSvg(path, width, height);
            else plot.SavePng(path, width, height);
            written.Add(path);
            return path;
        }

        var embeddings = Heatmap(report.Embeddings, "Token embeddings (token ↓, dimension →)", signed: true);
        Save(embeddings, "embeddings.png", 900, 500);

        string positionTitle = report.Positions.Kind switch
        {
            "sinusoidal" => "Sinusoidal position encoding (position ↓, dimension →)",
            "rotary" => "Rotary angles: cos(p·θᵢ) (position ↓, frequency pair →)",
            _ => "Learned position embeddings (position ↓, dimension →)",
        };
        var positions = Heatmap(report.Positions.Table, positionTitle, signed: true);
        Save(positions, "positions.png", 800, 600);
        Save(positions, "positions.svg", 800, 600);

        for (int layer = 0; layer < report.Attention.Count; layer++)
        {
            var plot = Heatmap(report.Attention[layer].Average, string.Create(CultureInfo.InvariantCulture, $"Attention, layer {layer}, average of heads (query ↓, key →)"), signed: false);
            Save(plot, string.Create(CultureInfo.InvariantCulture, $"attention-layer-{layer}.png"), 700, 620);
        }

        int t = report.Tokens.Count;
        var norms = new double[report.HiddenNorms.Count, t];
        for (int l = 0; l < report.HiddenNorms.Count; l++)
        {
            for (int i = 0; i < t; i++) norms[l, i] = report.HiddenNorms[l][i];
        }

        var normPlot = new Plot();
        var map = normPlot.Add.Heatmap(norms);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        normPlot.Add.ColorBar(map);
        normPlot.Title("Hidden-state norm ‖h‖ (layer ↓, token →)");
        Save(normPlot, "hidden-norms.png", 900, 400);
        return written;
    }

    private static Plot Heatmap(DisplayMatrix matrix, string title, bool signed)
    {
        var values = new double[matrix.Rows, matrix.Cols];
        double scale = 0;
        for (int i = 0; i < matrix.Rows; i++)
        {
            for (int j = 0; j < matrix.Cols; j++)
            {
                values[i, j] = matrix.Values[(i * matrix.Cols) + j];
                scale = Math.Max(scale, Math.Abs(values[i, j]));
            }
        }

        var plot = new Plot();
        var map = plot.Add.Heatmap(values);
        map.Colormap = signed ? new ScottPlot.Colormaps.MellowRainbow() : new ScottPlot.Colormaps.Viridis();
        if (signed && scale > 0)
        {
            map.ManualRange = new ScottPlot.Range(-scale, scale);
        }

        plot.Add.ColorBar(map);
        plot.Title(title);
        return plot;
    }
}
