"""The answer stage, one way: numbered sources (`citations`) → is the question in scope? (`scope`) → the composed
answer (`compose`, the typed `format.AnswerBody`) → the model's draft under a deadline (`generate`) → checks
(`verify`, with `support` scoring) → repair and the final check (`repair`) → Markdown (`render`).

`prompts` holds all prompt text, `format` the answer's text format (section titles, notes, the flag mark), and
`protocols` what the stage needs from the retriever, rule engine, knowledge, embedder and chat model.
`assistant.pipeline.Assistant` orchestrates the modules; none of them imports the pipeline.
"""
