using System.Text.Json;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Training.Tests.Optim;

/// <summary>Reads tests/fixtures/optim/expected.json (made by make_fixture.py with torch 1.13) and builds its parameters.</summary>
internal static class OptimFixture
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "optim", "expected.json"))));

    public static JsonElement Root => Document.Value.RootElement;

    public static IEnumerable<JsonElement> Cases(string kind) => Root.GetProperty(kind).EnumerateArray();

    public static JsonElement Case(string kind, string name) => Cases(kind).Single(c => c.GetProperty("name").GetString() == name);

    public static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(v => (float)v.GetDouble())];

    public static double[] Doubles(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetDouble())];

    public static int[][] Shapes(JsonElement c) =>
        [.. c.GetProperty("shapes").EnumerateArray().Select(s => s.EnumerateArray().Select(d => d.GetInt32()).ToArray())];

    /// <summary>The case's initial parameters, named p0, p1, ...</summary>
    public static List<(string Name, Parameter Parameter)> Parameters(JsonElement c)
    {
        var shapes = Shapes(c);
        var values = c.GetProperty("params").EnumerateArray().ToArray();
        return [.. shapes.Select((shape, i) => ($"p{i}", new Parameter(Tensor.FromArray(Floats(values[i]), new Shape(shape)))))];
    }

    /// <summary>Gives each parameter the step's gradient from the fixture, or none where the fixture has null.</summary>
    public static void SetGrads(JsonElement c, int step, IReadOnlyList<(string Name, Parameter Parameter)> parameters)
    {
        var row = c.GetProperty("grads")[step].EnumerateArray().ToArray();
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i].Parameter;
            p.Value.ZeroGrad();
            if (row[i].ValueKind != JsonValueKind.Null) SetGrad(p, Floats(row[i]));
        }
    }

    /// <summary>Makes <paramref name="grad"/> the parameter's gradient (through Backward on the leaf).</summary>
    public static void SetGrad(Parameter parameter, float[] grad)
    {
        parameter.Value.ZeroGrad();
        parameter.Value.Backward(Tensor.FromArray(grad, parameter.Shape));
    }

    /// <summary>Asserts |actual − expected| ≤ rel·|expected| + abs elementwise, naming the first failing element.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, double absolute, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            Assert.True(
                diff <= (relative * Math.Abs(expected[i])) + absolute,
                $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (diff {diff:E3}).");
        }
    }
}
