// Makes hf_windows.json: word ids, sequence ids, offsets and overflowing windows as Hugging Face's own Rust tokenizers
// (the npm package `tokenizers`, 0.23.2) return them, for WindowOracleTests.
//
//   npm install tokenizers@0.23.2
//   dotnet test tests/Sharpformer.Text.Tests -c Release --filter FullyQualifiedName~OracleTests   # writes the tokenizer.json files
//   node make_hf_windows.js <bin>/tokenizer-files/bert-*/json/tokenizer.json <bin>/tokenizer-files/gpt2-*/json/tokenizer.json > hf_windows.json
//
// tokenizers 0.23.2 has a known bug (huggingface/tokenizers#2091, fixed after that release): with truncation on, each
// input stops being tokenized after max_length tokens, so windows past that point never appear in `overflowing`. The
// cases below are chosen so that no input is longer than max_length tokens (the script checks this and stops if not),
// where the bug cannot act; long single inputs are windowed with Encoding.truncate on an untruncated encoding instead,
// which is the same Rust routine truncation calls.
const { Tokenizer } = require('tokenizers');

const texts = [
  'Hello, world!',
  "The patient's heart-rate was 72 bpm; don't panic.",
  'Héllo WORLD  über naïve café',
  '中文字符 and 日本語 mixed',
  'state-of-the-art [SEP] inside [MASK] text',
  'a supercalifragilisticexpialidociousandevenlongerwordthatgoesonandonandonforeveruntilitexceedsonehundredcharacters b',
  '   leading and trailing spaces   ',
  'tabs\tand\nnewlines\r\nhere',
  'emoji 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 letters',
  '',
];

const pairs = [
  ['What pumps blood?', 'The heart pumps blood through the body.'],
  ['Where is insulin made?', 'Insulin is made in the pancreas, by beta cells.'],
];

const windowCases = [
  // QA shape: question, context; only the context is cut, windows overlap by the stride.
  { text: 'What does the heart pump?', pair: 'The heart pumps blood through the body, and the lungs breathe air for everyone in the room today.', maxLength: 20, stride: 4, strategy: 'OnlySecond' },
  { text: 'Which organ?', pair: 'The liver filters blood; the kidneys filter it too, making urine that leaves through the bladder.', maxLength: 20, stride: 0, strategy: 'OnlySecond' },
  { text: 'Which organ?', pair: 'The liver filters blood; the kidneys filter it too, making urine that leaves through the bladder.', maxLength: 20, stride: 7, strategy: 'OnlySecond' },
  { text: 'The liver filters blood; the kidneys filter it too, making urine that leaves.', pair: 'Which organ filters?', maxLength: 17, stride: 3, strategy: 'OnlyFirst' },
  // longest_first with both inputs cut: HF's merge order of the two inputs' windows.
  { text: 'one two three four five six seven eight nine ten eleven', pair: 'alpha beta gamma delta epsilon zeta eta theta', maxLength: 16, stride: 2, strategy: 'LongestFirst' },
  { text: 'Short question here?', pair: 'a b c d e f g h i j k l m n o p q r s t u v w x y z', maxLength: 28, stride: 5, strategy: 'LongestFirst' },
  // A single input.
  { text: 'The heart pumps blood through the body, and the lungs breathe air.', pair: null, maxLength: 16, stride: 3, strategy: 'LongestFirst' },
];

const rawWindowCases = [
  { text: 'The heart pumps blood through the body, and the lungs breathe air for everyone in the room today and tomorrow.', maxLength: 6, stride: 2 },
  { text: 'The heart pumps blood through the body, and the lungs breathe air for everyone in the room today and tomorrow.', maxLength: 5, stride: 0 },
  { text: 'state-of-the-art tokenizers split words into pieces', maxLength: 4, stride: 3 },
];

// The binding reports offsets in Unicode scalar values; ours (and .NET's strings) count UTF-16 units.
function utf16(text, index) {
  return Array.from(text).slice(0, index).join('').length;
}

function describe(e, text, pair) {
  const sequenceIds = e.getSequenceIds();
  return {
    ids: e.getIds(),
    typeIds: e.getTypeIds(),
    wordIds: e.getWordIds().map(w => (w === null || w === undefined ? -1 : w)),
    sequenceIds: e.getSequenceIds().map(s => (s === null || s === undefined ? -1 : s)),
    offsets: e.getOffsets().map(([start, end], t) => {
      const source = sequenceIds[t] === 1 ? pair : text;
      return sequenceIds[t] === null || sequenceIds[t] === undefined ? [start, end] : [utf16(source, start), utf16(source, end)];
    }),
    specialTokensMask: e.getSpecialTokensMask(),
  };
}

async function forTokenizer(path) {
  const plain = Tokenizer.fromFile(path);
  const out = { encodings: [], windows: [], rawWindows: [] };
  for (const text of texts) {
    out.encodings.push({ text, pair: null, ...describe(await plain.encode(text), text, null) });
  }
  for (const [text, pair] of pairs) {
    out.encodings.push({ text, pair, ...describe(await plain.encode(text, pair), text, pair) });
  }
  for (const c of windowCases) {
    for (const input of [c.text, c.pair]) {
      if (input !== null) {
        const n = (await plain.encode(input, null, { addSpecialTokens: false })).getIds().length;
        if (n > c.maxLength) {
          throw new Error(`'${input}' has ${n} tokens, more than max_length ${c.maxLength}: tokenizers#2091 would cut its windows.`);
        }
      }
    }
    const cut = Tokenizer.fromFile(path);
    cut.setTruncation(c.maxLength, { stride: c.stride, strategy: c.strategy });
    const e = await cut.encode(c.text, c.pair);
    out.windows.push({ ...c, windows: [e, ...e.getOverflowing()].map(w => describe(w, c.text, c.pair)) });
  }
  for (const c of rawWindowCases) {
    const e = await plain.encode(c.text, null, { addSpecialTokens: false });
    e.truncate(c.maxLength, c.stride, 'right'); // the binding's default direction is left
    out.rawWindows.push({ ...c, windows: [e, ...e.getOverflowing()].map(w => describe(w, c.text, null)) });
  }
  return out;
}

(async () => {
  const result = { bert: await forTokenizer(process.argv[2]), gpt2: await forTokenizer(process.argv[3]) };
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
})();
