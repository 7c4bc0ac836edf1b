"""The stages of the replay: one thin module per stage (each exposes `STAGE`, a
`contract.Stage`), the contract they share (`contract`) and the ordered registry (`registry`)."""
