mod cli_util;
