/* placeholder test: fails until written */
int main(void) { return 1; }
