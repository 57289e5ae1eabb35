# embed_bytes(FILE BYTES LEN): reads FILE and sets BYTES to its bytes as a
# C initializer list ("0x3c,0x21,...", 16 to a line) and LEN to their
# count. Included by the scripts that compile repository files into the
# programs (embed.cmake, node/http/http_assets_embed.cmake).
function(embed_bytes file bytes_var len_var)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" digits)
  math(EXPR len "${digits} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
  set(${bytes_var} "${bytes}" PARENT_SCOPE)
  set(${len_var} ${len} PARENT_SCOPE)
endfunction()
