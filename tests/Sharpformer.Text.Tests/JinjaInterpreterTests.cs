using Sharpformer.Text.Jinja;

namespace Sharpformer.Text.Tests;

/// <summary>
/// The Jinja interpreter's constructs, errors (with line:column) and limits. Expected renderings are what jinja2 3.1
/// renders with trim_blocks and lstrip_blocks (checked by hand with /usr/bin/python3); the whole-template oracle is
/// <see cref="ChatTemplateOracleTests"/>.
/// </summary>
public class JinjaInterpreterTests
{
    private static string Render(string source, Dictionary<string, object?>? variables = null, JinjaLimits? limits = null) =>
        JinjaTemplate.Parse(source).Render(variables ?? [], limits);

    [Theory]
    [InlineData("{{ 1 + 2 * 3 }}", "7")]
    [InlineData("{{ 'a' ~ 1 ~ none }}", "a1None")]
    [InlineData("{{ [1, 'x', none, true, 2.5] }}", "[1, 'x', None, True, 2.5]")]
    [InlineData("{{ {'k': [1]} }}", "{'k': [1]}")]
    [InlineData("{{ 7 // -2 }} {{ 7 % -3 }} {{ 1 / 4 }} {{ 2 ** 3 }}", "-4 -2 0.25 8")]
    [InlineData("{{ 1e20 }} {{ 123456789.0 }} {{ 0.0001 }} {{ 1e-7 }}", "1e+20 123456789.0 0.0001 1e-07")]
    [InlineData("{{ 'yes' if 1 > 2 else 'no' }}|{{ 'x' if false }}|", "no||")]
    [InlineData("{{ 'b' in 'abc' and 'z' not in ['a'] }}", "True")]
    [InlineData("{{ 1 < 2 < 1 }}", "False")]
    [InlineData("{{ not undefined_name }}", "True")]
    [InlineData("{{ 'abc'[1:] }}{{ [1, 2, 3][::-1] }}{{ 'abc'[-1] }}", "bc[3, 2, 1]c")]
    [InlineData("{{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ 'hello world' | title }}|{{ 'AB' | lower | capitalize }}", "x|AB|Hello World|Ab")]
    [InlineData("{{ [3, 4] | length }} {{ 'abc' | count }} {{ {'a': 1} | length }}", "2 3 1")]
    [InlineData("{{ ['a', 'b'] | join('-') }} {{ [1, 2] | first }} {{ [1, 2] | last }} {{ 'ab' | list }}", "a-b 1 2 ['a', 'b']")]
    [InlineData("{{ x | default('d') }} {{ '' | default('e', true) }} {{ '5' | int + 1 }} {{ 3 | string ~ '!' }}", "d e 6 3!")]
    [InlineData("{{ {'a': 1, 'b': 2} | items | list }}", "[('a', 1), ('b', 2)]")]
    [InlineData("{{ 'a b  c'.split() }} {{ 'a,b'.split(',') }} {{ ' x '.strip() }} {{ 'ab'.startswith('a') }} {{ 'ab'.endswith('a') }}", "['a', 'b', 'c'] ['a', 'b'] x True False")]
    [InlineData("{{ {'k': 'v'}.get('k') }} {{ {'k': 'v'}.get('z') }} {{ {'k': 'v'}.keys() | list }}", "v None ['k']")]
    [InlineData("{{ 'a\"b' | tojson }} {{ {'é': [1, 2]} | tojson }} {{ [1] | tojson(indent=2) }}", "\"a\\\"b\" {\"é\": [1, 2]} [\n  1\n]")]
    [InlineData("{{ [1, 2, 3, 4] | select('even') | list }} {{ [{'a': 1}, {'a': 2}] | map(attribute='a') | join(',') }}", "[2, 4] 1,2")]
    [InlineData("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 3 is odd }} {{ 1 is not number }}", "False True True True True True False")]
    public void Expressions(string source, string expected) => Assert.Equal(expected, Render(source));

    [Fact]
    public void ForLoop_LoopVariables_ElseAndFilter()
    {
        const string Source = "{% for x in items if x != 'skip' %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ x }};{% else %}empty{% endfor %}";
        Assert.Equal("10TrueFalse2a;21FalseTrue2b;", Render(Source, new() { ["items"] = new[] { "a", "skip", "b" } }));
        Assert.Equal("empty", Render(Source, new() { ["items"] = Array.Empty<string>() }));
    }

    [Fact]
    public void SetInsideLoop_DoesNotLeak_ButNamespaceDoes()
    {
        const string Source = "{% set n = 0 %}{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set n = n + i %}{% set ns.n = ns.n + i %}{% endfor %}{{ n }} {{ ns.n }}";
        Assert.Equal("0 6", Render(Source));
    }

    [Fact]
    public void IfElifElse_MacroAndLoopControls()
    {
        Assert.Equal("two", Render("{% if x == 1 %}one{% elif x == 2 %}two{% else %}other{% endif %}", new() { ["x"] = 2 }));
        Assert.Equal("<b>hi</b>, <i>yo</i>", Render("{% macro tag(t, name='b') %}<{{ name }}>{{ t }}</{{ name }}>{% endmacro %}{{ tag('hi') }}, {{ tag('yo', name='i') }}"));
        Assert.Equal("013", Render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"));
    }

    [Fact]
    public void Whitespace_TrimBlocksLstripBlocksAndDashes()
    {
        Assert.Equal("a\nb\n", Render("a\n  {% if true %}\nb\n  {% endif %}\n"));
        Assert.Equal("ab", Render("a  \n  {{- 'b' -}}  \n"));
        Assert.Equal("  x", Render("  {%+ if true %}x{% endif %}"));
        Assert.Equal("ab", Render("a {#- note -#} b"));

        // Jinja's defaults: line endings become \n, and one newline at the end of the template is dropped.
        Assert.Equal("a", Render("a\n"));
        Assert.Equal("a\n", Render("a\n\n"));
        Assert.Equal("a\nb", Render("a\r\nb\r\n"));
        Assert.Equal("a\nb", Render("a\rb"));
        Assert.Equal("x\ny", Render("{{ \"x\r\ny\" }}"));
        Assert.Equal("x", Render("{% if true %}\r\nx{% endif %}"));
    }

    [Fact]
    public void Undefined_PrintsEmpty_IsFalsy_IteratesEmpty_ButAttributeAccessFails()
    {
        Assert.Equal("[]|no|0", Render("[{{ missing }}]|{% if missing %}yes{% else %}no{% endif %}|{% for x in missing %}x{% endfor %}{{ missing | length }}"));
        Assert.Equal("", Render("{{ d.missing }}", new() { ["d"] = new Dictionary<string, object?>() }));
        var e = Assert.Throws<JinjaException>(() => Render("x\n  {{ missing.attr }}"));
        Assert.Contains("'missing' is undefined", e.Message);
        Assert.Equal(2, e.Line);
    }

    [Fact]
    public void RaiseException_CarriesTheTemplatesMessageAndPosition()
    {
        var e = Assert.Throws<JinjaRaisedException>(() => Render("ok\n{{ raise_exception('Roles must alternate') }}"));
        Assert.Equal("Roles must alternate", e.Message);
        Assert.Equal(2, e.Line);
        Assert.Equal(4, e.Column);
    }

    [Theory]
    [InlineData("{% include 'x' %}", "Unsupported Jinja statement '{% include %}'", 1, 4)]
    [InlineData("a\n{{ x | frobnicate }}", "Unsupported Jinja filter 'frobnicate'", 2, 6)]
    [InlineData("{{ x is frobbed }}", "Unsupported Jinja test 'frobbed'", 1, 6)]
    [InlineData("{% if x %}never closed", "expected '{% elif %}' or '{% else %}' or '{% endif %}'", 1, 23)]
    [InlineData("{{ 'unterminated }}", "Unterminated string literal", 1, 4)]
    [InlineData("{{ 1 + }}", "Expected an expression but found '}}'", 1, 8)]
    [InlineData("line1\n  {{ a $ b }}", "Unexpected character '$'", 2, 8)]
    [InlineData("{# open", "Unclosed comment", 1, 1)]
    [InlineData("{{ 99999999999999999999 }}", "does not fit in 64 bits", 1, 4)]
    [InlineData("{{ '\\U00110000' }}", "Bad \\U escape", 1, 5)]
    [InlineData("{{ 1 + 'a' }}", "unsupported operand type(s) for +: 'int' and 'str'", 1, 4)]
    [InlineData("{% for x in 5 %}{% endfor %}", "'int' object is not iterable", 1, 13)]
    public void UnsupportedOrMalformedSyntax_NamesTheConstructAndPosition(string source, string message, int line, int column)
    {
        var e = Assert.ThrowsAny<JinjaException>(() => Render(source));
        Assert.Contains(message, e.Message);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.Contains($"line {line}, column {column}", e.Message);
    }

    [Fact]
    public void Limits_StepsOutputAndMacroRecursion_FailClearly()
    {
        var steps = Assert.Throws<JinjaException>(() => Render("{% for i in range(100000) %}{{ i }}{% endfor %}", limits: new JinjaLimits { MaxSteps = 1000 }));
        Assert.Contains("JinjaLimits.MaxSteps", steps.Message);

        var output = Assert.Throws<JinjaException>(() => Render("{% for i in range(1000) %}xxxxxxxxxx{% endfor %}", limits: new JinjaLimits { MaxOutputLength = 500 }));
        Assert.Contains("JinjaLimits.MaxOutputLength", output.Message);

        var doubling = Assert.Throws<JinjaException>(() => Render("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", limits: new JinjaLimits { MaxOutputLength = 100_000 }));
        Assert.Contains("JinjaLimits.MaxOutputLength", doubling.Message);

        var repeat = Assert.Throws<JinjaException>(() => Render("{{ 'x' * 100000000000 }}"));
        Assert.Contains("repetition", repeat.Message);

        var depth = Assert.Throws<JinjaException>(() => Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"));
        Assert.Contains("JinjaLimits.MaxCallDepth", depth.Message);
    }

    [Theory]
    [InlineData("{{ ", "1", " }}")]
    [InlineData("{{ ", "-", "1 }}")]
    [InlineData("{{ ", "not ", "1 }}")]
    [InlineData("", "{% if true %}", "")]
    public void DeepNesting_FailsClearlyInsteadOfOverflowingTheStack(string prefix, string repeated, string suffix)
    {
        int count = 100_000;
        string source = repeated == "1"
            ? prefix + new string('(', count) + "1" + new string(')', count) + suffix
            : prefix + string.Concat(Enumerable.Repeat(repeated, count)) + suffix;
        var e = Assert.ThrowsAny<JinjaException>(() => JinjaTemplate.Parse(source));
        Assert.Contains("deeper than", e.Message);
    }

    [Fact]
    public void ImmutableSandbox_ListMutationIsRefused()
    {
        var e = Assert.Throws<JinjaException>(() => Render("{% set l = [] %}{{ l.append(1) }}"));
        Assert.Contains("immutable", e.Message);
    }

    [Fact]
    public void ChatTemplate_FromFolder_PrefersJinjaFile_ReadsNamedListAndSpecialTokens()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharpformer-chat-template-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            Assert.Null(ChatTemplate.FromFolder(folder));
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """
                {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
                 "chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]}
                """);
            var fromList = ChatTemplate.FromFolder(folder)!;
            Assert.Equal("</s>", fromList.EosToken);
            Assert.Equal("<s>hi</s>", fromList.Render([("user", "hi")]));

            File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), "{% for m in messages %}[{{ m.role }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}");
            var fromFile = ChatTemplate.FromFolder(folder)!;
            Assert.Equal("[user]>", fromFile.Render([("user", "hi")], new ChatTemplateOptions { AddGenerationPrompt = true }));

            File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), "{% for m in messages %}");
            var e = Assert.ThrowsAny<JinjaException>(() => ChatTemplate.FromFolder(folder));
            Assert.Contains("chat_template.jinja", e.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void ChatTemplate_ContentParts_ToolsAndDocumentsAreNoneUnlessGiven()
    {
        var template = new ChatTemplate("{% for p in messages[0].content %}{{ p.text }}{% endfor %}|{{ tools is none }}|{{ documents is none }}|{{ tools[0].name if tools }}");
        var parts = new List<object?> { new Dictionary<string, object?> { ["type"] = "text", ["text"] = "a" }, new Dictionary<string, object?> { ["type"] = "text", ["text"] = "b" } };
        var messages = new List<IReadOnlyDictionary<string, object?>> { new Dictionary<string, object?> { ["role"] = "user", ["content"] = parts } };
        Assert.Equal("ab|True|True|", template.Render(messages));
        Assert.Equal("ab|False|True|f", template.Render(messages, new ChatTemplateOptions { Tools = [new Dictionary<string, object?> { ["name"] = "f" }] }));
    }

    [Fact]
    public void ChatTemplate_StrftimeNow_UsesTheGivenClock()
    {
        var template = new ChatTemplate("{{ strftime_now('%d %b %Y') }}");
        Assert.Equal("05 Mar 2025", template.Render(new List<(string Role, string Content)>(), new ChatTemplateOptions { Now = () => new DateTime(2025, 3, 5) }));
    }

    [Fact]
    public void AutoTokenizer_ExposesTheFoldersChatTemplate()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharpformer-chat-tokenizer-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
            Assert.Null(AutoTokenizer.FromPretrained(folder).ChatTemplate);
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"eos_token": "[SEP]", "chat_template": "{{ messages | length }}{{ eos_token }}"}""");
            var tokenizer = AutoTokenizer.FromPretrained(folder);
            Assert.Equal("1[SEP]", tokenizer.ChatTemplate!.Render([("user", "hello")]));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
