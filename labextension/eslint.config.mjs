// ESLint for the lab extension: the recommended JavaScript and typescript-eslint rules; formatting
// is prettier's (eslint-config-prettier turns off the rules that would fight it). `jlpm lint` fixes
// what can be fixed, `jlpm lint:check` (run by `make lint`) only reports.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'node_modules/', '../nbexp/labextension/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['src/**/*.ts'],
    rules: {
      // plotly figures and the server's JSON come in untyped; `any` marks where they are handed on
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }]
    }
  }
);
