"""The main job in miniature: embed texts (short and long), search them, stream a long one."""

from pathlib import Path

from lam import LAM

here = Path(__file__).parent
docs = {p.stem: p.read_text() for p in sorted((here / "texts").glob("*.txt"))}
model = LAM()  # the bundled weights: no network
print(model)

doc_emb = model.encode(list(docs.values()))
for query in ["how do ships avoid rocks at night?", "why doesn't the moon fall down?", "recipe for bread"]:
    scores = model.similarity(model.encode_query(query), doc_emb)[0]
    best = int(scores.argmax())
    print(f"{query!r:45} -> {list(docs)[best]:10} ({float(scores[best]):.3f})")

# A text far beyond the teacher's 256-token window, embedded whole and streamed in pieces.
long_text = " ".join(docs.values()) * 40
print(f"long text: {model.count_tokens(long_text):,} tokens")
stream = model.stream()
for i in range(0, len(long_text), 1000):
    stream.feed(long_text[i : i + 1000])
print(f"stream == encode: cosine {float(stream.embedding() @ model.encode(long_text)):.6f}")
print(model.stats())
