# cmake -DIN=FILE -DOUT=FILE.c -DNAME=SYMBOL -P cmake/embed.cmake
# Writes a C file defining `const unsigned char SYMBOL[]` (FILE's bytes,
# then a NUL that is not counted) and `const size_t SYMBOL_len`, so a file
# of the repository (lbd's status page) is compiled into a program.
include(${CMAKE_CURRENT_LIST_DIR}/embed_bytes.cmake)
embed_bytes("${IN}" bytes len)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${IN} by cmake/embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "extern const unsigned char ${NAME}[];\n"
  "extern const size_t ${NAME}_len;\n"
  "const unsigned char ${NAME}[] = {\n${bytes}0};\n"
  "const size_t ${NAME}_len = ${len};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
